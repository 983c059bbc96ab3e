/*
 * main.c - roomcast-load: options, the subscriber processes, the order of
 * a run and its report.
 *
 * A run: sample the server's memory; fork the subscriber processes (one
 * per --per-proc subscribers, since one process may hold only so many open
 * files) and wait until every subscriber is up; sample memory again and
 * run --probe; then publish (deliver mode), hold (hold mode) or, without
 * subscribers, publish as fast as possible (pubrate mode); collect the
 * counts and print them, one "key value" line each, for tests/bench.sh.
 * The exit status is 0 when nothing was lost, duplicated or refused, 1
 * otherwise, 2 for bad usage.
 *
 * Used by tests/bench.sh only; run it with --help for the options. It
 * connects to 127.0.0.1 and nowhere else, and a hard deadline ends it.
 */
#include "load.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Descriptors a subscriber process keeps beside its streams. */
#define FD_SPARE 64
/* Time for every subscriber to settle in the server before memory is
 * sampled again: the last heads may still be on their way. */
#define SETTLE_S 1.0

/* --- helpers shared by every file -------------------------------------- */

int64_t
load_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double
load_mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
load_room_name(const struct load_opts *o, uint32_t room, char *out,
               size_t out_size)
{
    snprintf(out, out_size, "%s%u", o->prefix, room);
}

int
load_connect(int port)
{
    struct sockaddr_in sa;
    int fd, saved;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
        errno != EINPROGRESS) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

void
load_abort_fd(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

unsigned
load_lat_bucket(uint64_t us)
{
    unsigned msb, shift, b;

    if (us < LOAD_LAT_LINEAR) {
        return (unsigned)us;
    }
    msb = 63u - (unsigned)__builtin_clzll(us);
    shift = msb - 5;
    b = LOAD_LAT_LINEAR + (msb - 6) * LOAD_LAT_STEPS +
        (unsigned)((us >> shift) - LOAD_LAT_STEPS);
    return b < LOAD_LAT_BUCKETS ? b : LOAD_LAT_BUCKETS - 1;
}

uint64_t
load_lat_value(unsigned bucket)
{
    unsigned e, sub, shift;

    if (bucket < LOAD_LAT_LINEAR) {
        return bucket;
    }
    e = (bucket - LOAD_LAT_LINEAR) / LOAD_LAT_STEPS + 6;
    sub = (bucket - LOAD_LAT_LINEAR) % LOAD_LAT_STEPS;
    shift = e - 5;
    /* The middle of the bucket. */
    return ((uint64_t)(LOAD_LAT_STEPS + sub) << shift) +
           ((uint64_t)1 << shift) / 2;
}

void
load_lat_add(uint64_t *hist, uint64_t us)
{
    hist[load_lat_bucket(us)]++;
}

double
load_lat_quantile(const uint64_t *hist, double q)
{
    uint64_t total = 0, cum = 0, target;
    unsigned b;

    for (b = 0; b < LOAD_LAT_BUCKETS; b++) {
        total += hist[b];
    }
    if (total == 0) {
        return 0;
    }
    target = (uint64_t)ceil(q * (double)total);
    if (target == 0) {
        target = 1;
    }
    for (b = 0; b < LOAD_LAT_BUCKETS; b++) {
        cum += hist[b];
        if (cum >= target) {
            return (double)load_lat_value(b);
        }
    }
    return (double)load_lat_value(LOAD_LAT_BUCKETS - 1);
}

void
load_set_error(char *dst, const char *fmt, ...)
{
    va_list ap;

    if (dst[0] != '\0') {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(dst, LOAD_ERROR_MAX, fmt, ap);
    va_end(ap);
}

/* --- options ----------------------------------------------------------- */

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: roomcast-load --server roomcast|nchan --port N --prefix P\n"
        "           [--mode deliver|hold|pubrate] [--transport sse|poll]\n"
        "           [--subs N] [--rooms N] [--messages N] [--rate R]\n"
        "           [--pub-conns N] [--ramp R] [--per-proc N]\n"
        "           [--seconds S] [--drain S] [--deadline S]\n"
        "           [--web PIDS] [--work PIDS] [--db PIDS] [--probe CMD]\n"
        "       roomcast-load --self-test\n"
        "deliver: N subscribers over the rooms, then M messages at R/s;\n"
        "hold: N idle SSE subscribers (or up to the first failure), held\n"
        "S seconds; pubrate: --pub-conns publishers as fast as answered\n"
        "for S seconds. PIDS: comma-separated, descendants included.\n");
}

static bool
is_room_prefix(const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0 || n > 40) {
        return false;
    }
    for (i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')) {
            return false;
        }
    }
    return true;
}

static int
parse_opts(int argc, char **argv, struct load_opts *o, bool *is_selftest)
{
    static const struct option longs[] = {
        { "mode", required_argument, NULL, 'm' },
        { "server", required_argument, NULL, 's' },
        { "transport", required_argument, NULL, 't' },
        { "port", required_argument, NULL, 'p' },
        { "prefix", required_argument, NULL, 'x' },
        { "subs", required_argument, NULL, 'n' },
        { "rooms", required_argument, NULL, 'r' },
        { "messages", required_argument, NULL, 'M' },
        { "rate", required_argument, NULL, 'R' },
        { "pub-conns", required_argument, NULL, 'c' },
        { "ramp", required_argument, NULL, 'a' },
        { "per-proc", required_argument, NULL, 'P' },
        { "seconds", required_argument, NULL, 'S' },
        { "drain", required_argument, NULL, 'd' },
        { "deadline", required_argument, NULL, 'D' },
        { "web", required_argument, NULL, 'W' },
        { "work", required_argument, NULL, 'K' },
        { "db", required_argument, NULL, 'B' },
        { "probe", required_argument, NULL, 'q' },
        { "self-test", no_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;

    *o = (struct load_opts){
        .mode = LOAD_MODE_DELIVER, .server = LOAD_ROOMCAST,
        .transport = LOAD_SSE, .port = 0, .prefix = NULL, .subs = 0,
        .rooms = 1, .messages = 0, .rate = 10, .pub_conns = 8,
        .ramp = 2000, .per_proc = 8000, .seconds = 5, .drain_seconds = 30,
        .deadline_seconds = 120, .web_pids = "", .work_pids = "",
        .db_pids = "", .probe_cmd = NULL,
    };
    *is_selftest = false;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'm':
            o->mode = strcmp(optarg, "hold") == 0      ? LOAD_MODE_HOLD
                      : strcmp(optarg, "pubrate") == 0 ? LOAD_MODE_PUBRATE
                      : strcmp(optarg, "deliver") == 0 ? LOAD_MODE_DELIVER
                                                       : (enum load_mode)-1;
            break;
        case 's':
            o->server = strcmp(optarg, "nchan") == 0 ? LOAD_NCHAN
                        : strcmp(optarg, "roomcast") == 0
                            ? LOAD_ROOMCAST
                            : (enum load_server)-1;
            break;
        case 't':
            o->transport = strcmp(optarg, "poll") == 0 ? LOAD_POLL
                           : strcmp(optarg, "sse") == 0
                               ? LOAD_SSE
                               : (enum load_transport)-1;
            break;
        case 'p': o->port = atoi(optarg); break;
        case 'x': o->prefix = optarg; break;
        case 'n': o->subs = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'r': o->rooms = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'M': o->messages = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'R': o->rate = atof(optarg); break;
        case 'c': o->pub_conns = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'a': o->ramp = atof(optarg); break;
        case 'P': o->per_proc = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'S': o->seconds = atof(optarg); break;
        case 'd': o->drain_seconds = atof(optarg); break;
        case 'D': o->deadline_seconds = atof(optarg); break;
        case 'W': o->web_pids = optarg; break;
        case 'K': o->work_pids = optarg; break;
        case 'B': o->db_pids = optarg; break;
        case 'q': o->probe_cmd = optarg; break;
        case 'T': *is_selftest = true; return 0;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (optind != argc || (int)o->mode < 0 || (int)o->server < 0 ||
        (int)o->transport < 0 || o->port < 1 || o->port > 65535 ||
        o->prefix == NULL || !is_room_prefix(o->prefix) || o->rooms < 1 ||
        o->rate <= 0 || o->ramp <= 0 || o->pub_conns < 1 ||
        o->per_proc < 1 || o->deadline_seconds <= 0 ||
        (o->mode == LOAD_MODE_HOLD && o->transport != LOAD_SSE)) {
        return -1;
    }
    return 0;
}

/* Takes the hard limit of open files as the soft one, and makes
 * per_proc fit under it. */
static void
raise_nofile(struct load_opts *o)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur != RLIM_INFINITY &&
            o->per_proc + FD_SPARE > rl.rlim_cur) {
            o->per_proc = rl.rlim_cur > 2 * FD_SPARE
                              ? (uint32_t)(rl.rlim_cur - FD_SPARE)
                              : FD_SPARE;
        }
        printf("nofile %llu\n", (unsigned long long)rl.rlim_cur);
    }
}

/* --- the subscriber processes ------------------------------------------- */

struct run {
    struct load_opts *o;
    struct load_shared *sh;
    pid_t pids[LOAD_MAX_PROCS];
    double t0;
    double deadline;
    double connect_s;
    uint64_t held_at_probe;
    struct probe_mem mem0, mem1;
    struct probe_cpu cpu0, cpu1;
    struct pub_result pub;
    char probe[256];
};

static int
fork_children(struct run *rn)
{
    const struct load_opts *o = rn->o;
    uint32_t k, first, next;
    pid_t pid;

    for (k = 0; k < o->procs; k++) {
        first = (uint32_t)((uint64_t)o->subs * k / o->procs);
        next = (uint32_t)((uint64_t)o->subs * (k + 1) / o->procs);
        fflush(stdout);
        pid = fork();
        if (pid < 0) {
            fprintf(stderr, "roomcast-load: fork: %s\n", strerror(errno));
            return -1;
        }
        if (pid == 0) {
            /* A subscriber process never outlives the run. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            alarm((unsigned)o->deadline_seconds + 30);
            _exit(sub_main(o, rn->sh, (int)k, first, next - first));
        }
        rn->pids[k] = pid;
    }
    return 0;
}

/* Waits until every child has set the flag at offset field of its stats,
 * or until the deadline. Returns 0, or -1 on the deadline. */
static int
wait_children(struct run *rn, size_t field)
{
    uint32_t k, n;

    while (load_mono_s() < rn->deadline) {
        for (n = 0, k = 0; k < rn->o->procs; k++) {
            int *flag = (int *)((char *)&rn->sh->child[k] + field);

            n += __atomic_load_n(flag, __ATOMIC_SEQ_CST) != 0;
        }
        if (n == rn->o->procs) {
            return 0;
        }
        usleep(20000);
    }
    return -1;
}

static void
sleep_until(double t)
{
    double now;

    while ((now = load_mono_s()) < t) {
        double left = t - now;

        usleep(left > 0.1 ? 100000 : (useconds_t)(left * 1e6) + 1);
    }
}

/* Stops the children and reaps them; SIGKILL after 10 s. */
static void
stop_children(struct run *rn)
{
    double until = load_mono_s() + 10;
    uint32_t k, left;
    int status;

    __atomic_store_n(&rn->sh->stop, 1, __ATOMIC_SEQ_CST);
    do {
        for (left = 0, k = 0; k < rn->o->procs; k++) {
            if (rn->pids[k] > 0 &&
                waitpid(rn->pids[k], &status, WNOHANG) == 0) {
                left++;
            } else {
                rn->pids[k] = 0;
            }
        }
        if (left > 0) {
            usleep(20000);
        }
    } while (left > 0 && load_mono_s() < until);
    for (k = 0; k < rn->o->procs; k++) {
        if (rn->pids[k] > 0) {
            kill(rn->pids[k], SIGKILL);
            waitpid(rn->pids[k], &status, 0);
        }
    }
}

/* --- the report --------------------------------------------------------- */

static void
sum_stats(const struct run *rn, struct load_stats *t)
{
    uint32_t k, b;

    memset(t, 0, sizeof(*t));
    for (k = 0; k < rn->o->procs; k++) {
        const struct load_stats *s = &rn->sh->child[k];

        t->connected += s->connected;
        t->connect_failed += s->connect_failed;
        t->disconnects += s->disconnects;
        t->reconnects += s->reconnects;
        t->http_errors += s->http_errors;
        t->polls += s->polls;
        t->expected += s->expected;
        t->received += s->received;
        t->duplicated += s->duplicated;
        t->foreign += s->foreign;
        t->unparsed += s->unparsed;
        if (s->first_us && (t->first_us == 0 || s->first_us < t->first_us)) {
            t->first_us = s->first_us;
        }
        if (s->last_us > t->last_us) {
            t->last_us = s->last_us;
        }
        t->lat_count += s->lat_count;
        t->lat_sum_us += s->lat_sum_us;
        if (s->lat_max_us > t->lat_max_us) {
            t->lat_max_us = s->lat_max_us;
        }
        for (b = 0; b < LOAD_LAT_BUCKETS; b++) {
            t->lat[b] += s->lat[b];
        }
        if (t->error[0] == '\0' && s->error[0] != '\0') {
            memcpy(t->error, s->error, sizeof(t->error));
        }
    }
}

static double
per_sub_bytes(uint64_t before_kb, uint64_t after_kb, uint64_t subs)
{
    if (subs == 0) {
        return 0;
    }
    return ((double)after_kb - (double)before_kb) * 1024.0 / (double)subs;
}

static void
report_memory(const struct run *rn, uint64_t subs)
{
    const struct probe_mem *a = &rn->mem0, *b = &rn->mem1;
    long page = sysconf(_SC_PAGESIZE);

    printf("mem_web_before_kb %llu\nmem_web_after_kb %llu\n",
           (unsigned long long)a->web_kb, (unsigned long long)b->web_kb);
    printf("mem_work_before_kb %llu\nmem_work_after_kb %llu\n",
           (unsigned long long)a->work_kb, (unsigned long long)b->work_kb);
    printf("mem_db_before_kb %llu\nmem_db_after_kb %llu\n",
           (unsigned long long)a->db_kb, (unsigned long long)b->db_kb);
    printf("mem_user_before_kb %llu\nmem_user_after_kb %llu\n",
           (unsigned long long)(a->web_kb + a->work_kb),
           (unsigned long long)(b->web_kb + b->work_kb));
    printf("mem_web_per_sub_b %.0f\n",
           per_sub_bytes(a->web_kb, b->web_kb, subs));
    printf("mem_work_per_sub_b %.0f\n",
           per_sub_bytes(a->work_kb, b->work_kb, subs));
    printf("mem_user_per_sub_b %.0f\n",
           per_sub_bytes(a->web_kb + a->work_kb, b->web_kb + b->work_kb,
                         subs));
    printf("tcp_mem_per_sub_b %.0f\n",
           per_sub_bytes(a->tcp_mem_pages * (uint64_t)page / 1024,
                         b->tcp_mem_pages * (uint64_t)page / 1024, subs));
    printf("slab_per_sub_b %.0f\n",
           per_sub_bytes(a->slab_kb, b->slab_kb, subs));
    printf("sockets_added %lld\n",
           (long long)b->sockets_used - (long long)a->sockets_used);
}

static void
report_latency(const char *what, const uint64_t *hist, uint64_t count,
               double sum_us, uint64_t max_us)
{
    printf("%s_p50_ms %.3f\n", what, load_lat_quantile(hist, 0.50) / 1e3);
    printf("%s_p99_ms %.3f\n", what, load_lat_quantile(hist, 0.99) / 1e3);
    printf("%s_max_ms %.3f\n", what, (double)max_us / 1e3);
    printf("%s_mean_ms %.3f\n", what,
           count ? sum_us / (double)count / 1e3 : 0.0);
}

static void
report_cpu(const struct run *rn)
{
    double web = rn->cpu1.web_s - rn->cpu0.web_s;
    double work = rn->cpu1.work_s - rn->cpu0.work_s;

    printf("cpu_web_s %.2f\ncpu_work_s %.2f\ncpu_db_s %.2f\ncpu_s %.2f\n",
           web, work, rn->cpu1.db_s - rn->cpu0.db_s, web + work);
}

/* Prints what the deliver and hold modes found. Returns the exit status. */
static int
report_subscribers(const struct run *rn)
{
    const struct load_opts *o = rn->o;
    const struct pub_result *p = &rn->pub;
    struct load_stats t;
    uint64_t missing;
    double window_s;
    bool is_ok;

    sum_stats(rn, &t);
    missing = t.expected > t.received ? t.expected - t.received : 0;
    printf("subs %u\nprocs %u\nconnected %llu\nconnect_failed %llu\n",
           o->subs, o->procs, (unsigned long long)t.connected,
           (unsigned long long)t.connect_failed);
    printf("connect_s %.2f\n", rn->connect_s);
    report_memory(rn, rn->held_at_probe);
    printf("probe %s\n", rn->probe);
    if (o->mode == LOAD_MODE_HOLD) {
        printf("held %llu\nheld_end %llu\n",
               (unsigned long long)rn->held_at_probe,
               (unsigned long long)rn->sh->held);
        printf("hold_error %s\n",
               rn->sh->hold_error[0] ? rn->sh->hold_error : "-");
        printf("disconnects %llu\n", (unsigned long long)t.disconnects);
        printf("error %s\n", t.error[0] ? t.error : "-");
        is_ok = rn->held_at_probe == o->subs && t.disconnects == 0;
        printf("status %s\n", is_ok ? "ok" : "short");
        return is_ok ? 0 : 1;
    }

    window_s = t.last_us > p->first_us && p->first_us > 0
                   ? (double)(t.last_us - p->first_us) / 1e6
                   : 0;
    printf("published %llu\npublish_failed %llu\npublish_lag_max_ms %.1f\n",
           (unsigned long long)p->acked, (unsigned long long)p->failed,
           p->lag_max_ms);
    printf("publish_s %.2f\n",
           p->end_us > p->first_us ? (p->end_us - p->first_us) / 1e6 : 0.0);
    printf("expected %llu\nreceived %llu\nmissing %llu\nduplicated %llu\n",
           (unsigned long long)t.expected, (unsigned long long)t.received,
           (unsigned long long)missing, (unsigned long long)t.duplicated);
    printf("foreign %llu\nunparsed %llu\ndisconnects %llu\n",
           (unsigned long long)t.foreign, (unsigned long long)t.unparsed,
           (unsigned long long)t.disconnects);
    printf("http_errors %llu\nreconnects %llu\npolls %llu\n",
           (unsigned long long)t.http_errors,
           (unsigned long long)t.reconnects, (unsigned long long)t.polls);
    printf("window_s %.3f\ndeliveries_per_s %.0f\n", window_s,
           window_s > 0 ? (double)t.received / window_s : 0.0);
    report_latency("lat", t.lat, t.lat_count, t.lat_sum_us, t.lat_max_us);
    report_latency("publat", p->lat, p->lat_count, p->lat_sum_us,
                   p->lat_max_us);
    report_cpu(rn);
    printf("error %s\n", t.error[0] ? t.error
                         : p->error[0] ? p->error
                                       : "-");
    is_ok = missing == 0 && t.duplicated == 0 && t.foreign == 0 &&
            t.connect_failed == 0 && t.disconnects == 0 && p->failed == 0 &&
            p->acked == o->messages;
    printf("status %s\n", is_ok ? "ok" : "FAIL");
    return is_ok ? 0 : 1;
}

/* --- the three modes --------------------------------------------------- */

static int
run_subscribers(struct load_opts *o)
{
    static struct run rn;
    int status;

    rn.o = o;
    rn.sh = mmap(NULL, sizeof(*rn.sh), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rn.sh == MAP_FAILED) {
        fprintf(stderr, "roomcast-load: mmap: %s\n", strerror(errno));
        return 1;
    }
    probe_mem(o, &rn.mem0);
    rn.t0 = load_mono_s();
    rn.deadline = rn.t0 + o->deadline_seconds;
    if (fork_children(&rn) < 0) {
        stop_children(&rn);
        return 1;
    }
    if (wait_children(&rn, offsetof(struct load_stats, ready)) < 0) {
        load_set_error(rn.pub.error, "subscribers not up by the deadline");
    }
    rn.connect_s = load_mono_s() - rn.t0;
    sleep_until(load_mono_s() + SETTLE_S);
    rn.held_at_probe = __atomic_load_n(&rn.sh->held, __ATOMIC_SEQ_CST);
    probe_mem(o, &rn.mem1);
    probe_run(o->probe_cmd, rn.probe, sizeof(rn.probe));

    if (o->mode == LOAD_MODE_HOLD) {
        sleep_until(fmin(load_mono_s() + o->seconds, rn.deadline));
    } else {
        probe_cpu(o, &rn.cpu0);
        pub_run(o, rn.deadline, &rn.pub);
        __atomic_store_n(&rn.sh->pub_done, 1, __ATOMIC_SEQ_CST);
        wait_children(&rn, offsetof(struct load_stats, finished));
        probe_cpu(o, &rn.cpu1);
    }
    stop_children(&rn);
    status = report_subscribers(&rn);
    munmap(rn.sh, sizeof(*rn.sh));
    return status;
}

static int
run_pubrate(struct load_opts *o)
{
    static struct run rn;
    struct pub_result *p = &rn.pub;
    double secs;

    rn.o = o;
    probe_cpu(o, &rn.cpu0);
    if (pub_run(o, load_mono_s() + o->deadline_seconds, p) < 0) {
        printf("error %s\nstatus FAIL\n", p->error);
        return 1;
    }
    probe_cpu(o, &rn.cpu1);
    secs = p->end_us > p->first_us ? (p->end_us - p->first_us) / 1e6 : 0;
    printf("published %llu\npublish_failed %llu\npublish_s %.2f\n",
           (unsigned long long)p->acked, (unsigned long long)p->failed,
           secs);
    printf("publishes_per_s %.0f\n", secs > 0 ? p->acked / secs : 0.0);
    report_latency("publat", p->lat, p->lat_count, p->lat_sum_us,
                   p->lat_max_us);
    report_cpu(&rn);
    printf("error %s\n", p->error[0] ? p->error : "-");
    printf("status %s\n", p->failed == 0 ? "ok" : "FAIL");
    return p->failed == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
    struct load_opts o;
    bool is_selftest;

    if (parse_opts(argc, argv, &o, &is_selftest) < 0) {
        usage(stderr);
        return 2;
    }
    if (is_selftest) {
        return load_selftest();
    }
    /* A server closing a connection must not kill the tool. */
    signal(SIGPIPE, SIG_IGN);
    /* The tool ends by itself even if every wait below went wrong. */
    alarm((unsigned)o.deadline_seconds + 60);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (o.mode == LOAD_MODE_PUBRATE) {
        return run_pubrate(&o);
    }
    raise_nofile(&o);
    o.procs = (o.subs + o.per_proc - 1) / o.per_proc;
    if (o.procs == 0 || o.procs > LOAD_MAX_PROCS) {
        fprintf(stderr, "roomcast-load: --subs %u needs 1 to %d processes"
                " of --per-proc %u\n", o.subs, LOAD_MAX_PROCS, o.per_proc);
        return 2;
    }
    return run_subscribers(&o);
}
