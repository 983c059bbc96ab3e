/*
 * strmap.h - a hash map from short strings to pointers.
 *
 * For the per-process caches and counters that are keyed by a name: token
 * hashes, room names, user ids. Keys are copied; values belong to the
 * caller, who frees them (strmap_free takes a function for that). Not
 * thread-safe: one loop owns each map.
 */
#ifndef ROOMCAST_STRMAP_H
#define ROOMCAST_STRMAP_H

#include <stddef.h>

struct strmap;

struct strmap *strmap_new(void);
/* Frees the map; free_value (may be NULL) is called for every value. */
void strmap_free(struct strmap *map, void (*free_value)(void *));

void *strmap_get(const struct strmap *map, const char *key);
/* Sets key to value and returns the value it replaces (or NULL). Returns
 * value itself, unstored, when out of memory: compare to tell. */
void *strmap_put(struct strmap *map, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *strmap_remove(struct strmap *map, const char *key);
size_t strmap_count(const struct strmap *map);

/* Calls fn for every entry; fn returns 1 to remove the entry (after
 * freeing its value itself) or 0 to keep it. */
void strmap_sweep(struct strmap *map, int (*fn)(void *arg, const char *key,
                                                void *value), void *arg);

#endif
