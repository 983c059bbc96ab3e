/*
 * probe.c - what roomcast-load measures on the server side, from /proc:
 * memory (PSS, or RSS where the kernel has no smaps_rollup) and CPU time of
 * the web server, the workers and the database, and the machine's socket
 * and slab memory.
 *
 * Each group is given as pids; their descendants count too, so the master
 * pid of lighttpd, nginx or PostgreSQL stands for all its processes. The
 * machine-wide figures include every other program's sockets: the tool
 * reports differences taken a moment apart, which is what a bench on a
 * quiet machine can trust and a busy one only roughly. Reads only.
 */
#include "load.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Most processes one group may have; a web server with a few workers and
 * a PostgreSQL with its backends stay far below. */
#define GROUP_MAX 512

struct proc_entry {
    int pid;
    int ppid;
};

struct proc_table {
    struct proc_entry *e;
    size_t n;
};

/* The fields after the command name of /proc/PID/stat, which may itself
 * hold spaces and parentheses; NULL if the process is gone. */
static char *
read_stat_tail(int pid, char *buf, size_t size)
{
    char path[64];
    FILE *f;
    char *close_paren;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    close_paren = strrchr(buf, ')');
    return close_paren ? close_paren + 2 : NULL;
}

static void
table_load(struct proc_table *t)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    char buf[1024], *tail;
    size_t cap = 0;
    int pid, ppid;
    char state;

    t->e = NULL;
    t->n = 0;
    if (d == NULL) {
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0])) {
            continue;
        }
        pid = atoi(de->d_name);
        tail = read_stat_tail(pid, buf, sizeof(buf));
        if (tail == NULL || sscanf(tail, "%c %d", &state, &ppid) != 2) {
            continue;
        }
        if (t->n == cap) {
            struct proc_entry *e;

            cap = cap ? cap * 2 : 512;
            e = realloc(t->e, cap * sizeof(*e));
            if (e == NULL) {
                break;
            }
            t->e = e;
        }
        t->e[t->n].pid = pid;
        t->e[t->n].ppid = ppid;
        t->n++;
    }
    closedir(d);
}

static bool
group_has(const int *g, size_t n, int pid)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (g[i] == pid) {
            return true;
        }
    }
    return false;
}

/* Fills g with the pids in list and all their descendants. */
static size_t
group_collect(const struct proc_table *t, const char *list, int *g)
{
    size_t n = 0, i, before;
    const char *p = list;
    char *end;
    long v;

    while (p != NULL && *p != '\0' && n < GROUP_MAX) {
        v = strtol(p, &end, 10);
        if (end == p) {
            break;
        }
        if (v > 0 && !group_has(g, n, (int)v)) {
            g[n++] = (int)v;
        }
        p = *end == ',' ? end + 1 : NULL;
    }
    /* Add children until nothing changes: at most a few levels deep. */
    do {
        before = n;
        for (i = 0; i < t->n && n < GROUP_MAX; i++) {
            if (group_has(g, n, t->e[i].ppid) &&
                !group_has(g, n, t->e[i].pid)) {
                g[n++] = t->e[i].pid;
            }
        }
    } while (n != before);
    return n;
}

/* Reads "key <number>" from a /proc file; 0 when absent. */
static uint64_t
file_value(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t klen = strlen(key);
    uint64_t v = 0;

    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, klen) == 0) {
            v = strtoull(line + klen, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static uint64_t
process_mem_kb(int pid)
{
    char path[64];
    uint64_t kb;

    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
    kb = file_value(path, "Pss:");
    if (kb == 0) {
        snprintf(path, sizeof(path), "/proc/%d/status", pid);
        kb = file_value(path, "VmRSS:");
    }
    return kb;
}

static double
process_cpu_s(int pid)
{
    char buf[1024], *tail;
    unsigned long utime = 0, stime = 0;

    tail = read_stat_tail(pid, buf, sizeof(buf));
    if (tail == NULL ||
        sscanf(tail, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &utime, &stime) != 2) {
        return 0;
    }
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t
group_mem_kb(const struct proc_table *t, const char *list)
{
    int g[GROUP_MAX];
    size_t n = group_collect(t, list, g), i;
    uint64_t sum = 0;

    for (i = 0; i < n; i++) {
        sum += process_mem_kb(g[i]);
    }
    return sum;
}

static double
group_cpu_s(const struct proc_table *t, const char *list)
{
    int g[GROUP_MAX];
    size_t n = group_collect(t, list, g), i;
    double sum = 0;

    for (i = 0; i < n; i++) {
        sum += process_cpu_s(g[i]);
    }
    return sum;
}

/* TCP buffer pages and sockets in use, from /proc/net/sockstat. */
static void
read_sockstat(uint64_t *tcp_pages, uint64_t *used)
{
    FILE *f = fopen("/proc/net/sockstat", "r");
    char line[256], *m;

    *tcp_pages = 0;
    *used = 0;
    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "sockets: used ", 14) == 0) {
            *used = strtoull(line + 14, NULL, 10);
        } else if (strncmp(line, "TCP:", 4) == 0 &&
                   (m = strstr(line, " mem ")) != NULL) {
            *tcp_pages = strtoull(m + 5, NULL, 10);
        }
    }
    fclose(f);
}

void
probe_mem(const struct load_opts *o, struct probe_mem *m)
{
    struct proc_table t;

    table_load(&t);
    m->web_kb = group_mem_kb(&t, o->web_pids);
    m->work_kb = group_mem_kb(&t, o->work_pids);
    m->db_kb = group_mem_kb(&t, o->db_pids);
    free(t.e);
    read_sockstat(&m->tcp_mem_pages, &m->sockets_used);
    m->slab_kb = file_value("/proc/meminfo", "Slab:");
}

void
probe_cpu(const struct load_opts *o, struct probe_cpu *c)
{
    struct proc_table t;

    table_load(&t);
    c->web_s = group_cpu_s(&t, o->web_pids);
    c->work_s = group_cpu_s(&t, o->work_pids);
    c->db_s = group_cpu_s(&t, o->db_pids);
    free(t.e);
}

void
probe_run(const char *cmd, char *out, size_t out_size)
{
    FILE *f;
    size_t n;

    snprintf(out, out_size, "-");
    if (cmd == NULL || *cmd == '\0') {
        return;
    }
    f = popen(cmd, "r");
    if (f == NULL) {
        return;
    }
    if (fgets(out, (int)out_size, f) == NULL) {
        snprintf(out, out_size, "-");
    }
    n = strcspn(out, "\r\n");
    out[n] = '\0';
    /* Drain the rest so the command is not killed by SIGPIPE. */
    while (fgetc(f) != EOF) {
        continue;
    }
    pclose(f);
}
