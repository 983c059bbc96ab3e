/*
 * strmap.c - chained hash map of strings (see strmap.h). The table
 * doubles when it holds more entries than buckets.
 */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct strmap_entry {
    struct strmap_entry *next;
    void *value;
    char key[];
};

struct strmap {
    struct strmap_entry **buckets;
    size_t nbuckets;
    size_t count;
};

static size_t
key_hash(const char *key, size_t nbuckets)
{
    uint32_t h = 2166136261u;

    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 16777619u;
    return h % nbuckets;
}

struct strmap *
strmap_new(void)
{
    struct strmap *map = calloc(1, sizeof(*map));

    if (map == NULL)
        return NULL;
    map->nbuckets = 64;
    map->buckets = calloc(map->nbuckets, sizeof(*map->buckets));
    if (map->buckets == NULL) {
        free(map);
        return NULL;
    }
    return map;
}

void
strmap_free(struct strmap *map, void (*free_value)(void *))
{
    if (map == NULL)
        return;
    for (size_t i = 0; i < map->nbuckets; i++) {
        struct strmap_entry *e = map->buckets[i];

        while (e != NULL) {
            struct strmap_entry *next = e->next;

            if (free_value != NULL)
                free_value(e->value);
            free(e);
            e = next;
        }
    }
    free(map->buckets);
    free(map);
}

static struct strmap_entry **
find_slot(const struct strmap *map, const char *key)
{
    struct strmap_entry **p = &map->buckets[key_hash(key, map->nbuckets)];

    while (*p != NULL && strcmp((*p)->key, key) != 0)
        p = &(*p)->next;
    return p;
}

void *
strmap_get(const struct strmap *map, const char *key)
{
    struct strmap_entry *e = *find_slot(map, key);

    return e != NULL ? e->value : NULL;
}

static void
grow(struct strmap *map)
{
    size_t n = map->nbuckets * 2;
    struct strmap_entry **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return;             /* longer chains, still correct */
    for (size_t i = 0; i < map->nbuckets; i++) {
        struct strmap_entry *e = map->buckets[i];

        while (e != NULL) {
            struct strmap_entry *next = e->next;
            size_t k = key_hash(e->key, n);

            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(map->buckets);
    map->buckets = b;
    map->nbuckets = n;
}

void *
strmap_put(struct strmap *map, const char *key, void *value)
{
    struct strmap_entry **slot = find_slot(map, key);
    struct strmap_entry *e;
    size_t len;

    if (*slot != NULL) {
        void *old = (*slot)->value;

        (*slot)->value = value;
        return old;
    }
    len = strlen(key);
    e = malloc(sizeof(*e) + len + 1);
    if (e == NULL)
        return value;
    memcpy(e->key, key, len + 1);
    e->value = value;
    e->next = NULL;
    *slot = e;
    map->count++;
    if (map->count > map->nbuckets)
        grow(map);
    return NULL;
}

void *
strmap_remove(struct strmap *map, const char *key)
{
    struct strmap_entry **slot = find_slot(map, key);
    struct strmap_entry *e = *slot;
    void *value;

    if (e == NULL)
        return NULL;
    *slot = e->next;
    value = e->value;
    free(e);
    map->count--;
    return value;
}

size_t
strmap_count(const struct strmap *map)
{
    return map->count;
}

void
strmap_sweep(struct strmap *map,
             int (*fn)(void *arg, const char *key, void *value), void *arg)
{
    for (size_t i = 0; i < map->nbuckets; i++) {
        struct strmap_entry **p = &map->buckets[i];

        while (*p != NULL) {
            struct strmap_entry *e = *p;

            if (fn(arg, e->key, e->value)) {
                *p = e->next;
                free(e);
                map->count--;
            } else {
                p = &e->next;
            }
        }
    }
}
