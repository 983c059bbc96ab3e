/*
 * hub.c - the LISTEN connection and fan-out declared in hub.h.
 *
 * Rooms live in a hash table keyed by name and exist while they have
 * local subscribers. Each room remembers the newest seq it delivered
 * (last_seq); a notification at or below it is a repeat and is dropped,
 * one above last_seq + 1 first has its gap read from the table.
 */
#include "hub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "log.h"

#define HUB_CHANNEL "roomcast"
#define HUB_FILL_PAGE 500           /* rows per catch-up read */
#define HUB_BACKOFF_MIN_MS 250
#define HUB_BACKOFF_MAX_MS 5000

/* The newest stored events a room keeps in memory, and how long a room
 * stays after its last subscriber left. A long-poll client comes back
 * right after each answer with the cursor it got; with the room still
 * here, its next poll is answered from memory or parked without a query,
 * which is what lets a thousand polling clients cost no database load. */
#define HUB_RECENT 32
#define HUB_LINGER_MS 30000

struct hub_room {
    struct hub_room *hash_next;
    struct hub_sub *subs;           /* doubly linked, via hub_sub */
    int64_t last_seq;
    int64_t nsubs;
    int64_t idle_since_ms;          /* when nsubs fell to 0 */
    bool needs_fill;                /* a read failed; retry on tick */
    unsigned recent_count;
    unsigned recent_next;           /* ring slot of the next event */
    struct hub_event *recent[HUB_RECENT];
    char name[65];
};

struct hub {
    PGconn *conn;
    char *conninfo;
    struct store *store;
    hub_deliver_fn deliver;
    hub_batch_fn batch_done;
    void *ctx;
    hub_control_fn control;
    void *control_ctx;

    unsigned generation;
    int64_t next_connect_ms;
    int64_t now_ms;                 /* of the last tick */
    int64_t backoff_ms;
    bool needs_catchup;

    struct hub_room **buckets;
    size_t nbuckets;
    int64_t nrooms;
};

static uint32_t
room_hash(const char *name)
{
    uint32_t h = 2166136261u;

    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 16777619u;
    return h;
}

struct hub *
hub_new(const char *conninfo, struct store *store, hub_deliver_fn deliver,
        hub_batch_fn batch_done, void *ctx)
{
    struct hub *hub = calloc(1, sizeof(*hub));

    if (hub == NULL)
        return NULL;
    hub->nbuckets = 1024;
    hub->buckets = calloc(hub->nbuckets, sizeof(*hub->buckets));
    hub->conninfo = strdup(conninfo);
    if (hub->buckets == NULL || hub->conninfo == NULL) {
        hub_free(hub);
        return NULL;
    }
    hub->store = store;
    hub->deliver = deliver;
    hub->batch_done = batch_done;
    hub->ctx = ctx;
    hub->backoff_ms = HUB_BACKOFF_MIN_MS;
    return hub;
}

void
hub_set_control(struct hub *hub, hub_control_fn fn, void *ctx)
{
    hub->control = fn;
    hub->control_ctx = ctx;
}

void
hub_free(struct hub *hub)
{
    if (hub == NULL)
        return;
    if (hub->conn != NULL)
        PQfinish(hub->conn);
    for (size_t i = 0; hub->buckets && i < hub->nbuckets; i++) {
        struct hub_room *r = hub->buckets[i];

        while (r != NULL) {
            struct hub_room *next = r->hash_next;

            for (unsigned k = 0; k < HUB_RECENT; k++)
                hub_event_unref(r->recent[k]);
            free(r);
            r = next;
        }
    }
    free(hub->buckets);
    free(hub->conninfo);
    free(hub);
}

int
hub_fd(const struct hub *hub)
{
    return hub->conn != NULL ? PQsocket(hub->conn) : -1;
}

unsigned
hub_generation(const struct hub *hub)
{
    return hub->generation;
}

bool
hub_is_live(const struct hub *hub)
{
    return hub->conn != NULL && !hub->needs_catchup;
}

int64_t
hub_rooms_count(const struct hub *hub)
{
    return hub->nrooms;
}

/* ---- rooms ---- */

struct hub_room *
hub_room_find(struct hub *hub, const char *name)
{
    struct hub_room *r = hub->buckets[room_hash(name) % hub->nbuckets];

    while (r != NULL && strcmp(r->name, name) != 0)
        r = r->hash_next;
    return r;
}

int64_t
hub_room_last_seq(const struct hub_room *room)
{
    return room->last_seq;
}

const char *
hub_room_name(const struct hub_room *room)
{
    return room->name;
}

/* Doubles the table when it holds more rooms than buckets, so lookups
 * stay short however many rooms one process serves. */
static void
rooms_grow(struct hub *hub)
{
    size_t n = hub->nbuckets * 2;
    struct hub_room **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return;             /* longer chains, still correct */
    for (size_t i = 0; i < hub->nbuckets; i++) {
        struct hub_room *r = hub->buckets[i];

        while (r != NULL) {
            struct hub_room *next = r->hash_next;
            size_t k = room_hash(r->name) % n;

            r->hash_next = b[k];
            b[k] = r;
            r = next;
        }
    }
    free(hub->buckets);
    hub->buckets = b;
    hub->nbuckets = n;
}

static struct hub_room *
room_add(struct hub *hub, const char *name, int64_t last_seq)
{
    struct hub_room *r = calloc(1, sizeof(*r));
    size_t k;

    if (r == NULL)
        return NULL;
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->last_seq = last_seq;
    if ((size_t)hub->nrooms >= hub->nbuckets)
        rooms_grow(hub);
    k = room_hash(name) % hub->nbuckets;
    r->hash_next = hub->buckets[k];
    hub->buckets[k] = r;
    hub->nrooms++;
    return r;
}

static void
room_remove(struct hub *hub, struct hub_room *room)
{
    for (unsigned i = 0; i < HUB_RECENT; i++)
        hub_event_unref(room->recent[i]);
    struct hub_room **p = &hub->buckets[room_hash(room->name) %
                                        hub->nbuckets];

    while (*p != room)
        p = &(*p)->hash_next;
    *p = room->hash_next;
    hub->nrooms--;
    free(room);
}

int
hub_subscribe(struct hub *hub, const char *room, int64_t room_last_seq,
              struct hub_sub *sub)
{
    struct hub_room *r = hub_room_find(hub, room);

    if (r == NULL) {
        r = room_add(hub, room, room_last_seq);
        if (r == NULL)
            return -1;
    }
    sub->room = r;
    sub->prev = NULL;
    sub->next = r->subs;
    if (r->subs != NULL)
        r->subs->prev = sub;
    r->subs = sub;
    r->nsubs++;
    return 0;
}

void
hub_unsubscribe(struct hub *hub, struct hub_sub *sub)
{
    struct hub_room *r = sub->room;

    if (r == NULL)
        return;
    if (sub->prev != NULL)
        sub->prev->next = sub->next;
    else
        r->subs = sub->next;
    if (sub->next != NULL)
        sub->next->prev = sub->prev;
    sub->room = NULL;
    sub->prev = sub->next = NULL;
    if (--r->nsubs == 0)
        r->idle_since_ms = hub->now_ms;
}

/* ---- events ---- */

struct hub_event *
hub_event_new(const char *room, const char *type, int64_t seq,
              const char *envelope, size_t envelope_len)
{
    struct hub_event *ev = malloc(sizeof(*ev) + envelope_len + 1);
    char *copy;

    if (ev == NULL)
        return NULL;
    memset(ev, 0, sizeof(*ev));
    ev->refs = 1;
    ev->seq = seq;
    snprintf(ev->room, sizeof(ev->room), "%s", room);
    snprintf(ev->type, sizeof(ev->type), "%s", type);
    copy = (char *)(ev + 1);
    memcpy(copy, envelope, envelope_len);
    copy[envelope_len] = '\0';
    ev->envelope = copy;
    ev->envelope_len = envelope_len;
    return ev;
}

void
hub_event_ref(struct hub_event *ev)
{
    ev->refs++;
}

void
hub_event_unref(struct hub_event *ev)
{
    if (ev == NULL || --ev->refs > 0)
        return;
    free(ev->encoded);
    free(ev);
}

/* The envelope of a stored message starts {"type":"...", as
 * roomcast.envelope() writes it; types hold no characters that need
 * escaping, so the type is read without a JSON parser. */
void
hub_envelope_type(const char *env, size_t len, char *type, size_t size)
{
    static const char prefix[] = "{\"type\":\"";
    size_t n = sizeof(prefix) - 1, i = 0;

    snprintf(type, size, "message");
    if (len <= n || memcmp(env, prefix, n) != 0)
        return;
    while (n + i < len && env[n + i] != '"' && i + 1 < size) {
        type[i] = env[n + i];
        i++;
    }
    type[i] = '\0';
}

/* Keeps ev among the room's newest stored events. They arrive here in
 * seq order without holes (gaps are filled before delivery), so the ring
 * always holds a run of consecutive seqs. */
static void
remember(struct hub_room *room, struct hub_event *ev)
{
    hub_event_unref(room->recent[room->recent_next]);
    hub_event_ref(ev);
    room->recent[room->recent_next] = ev;
    room->recent_next = (room->recent_next + 1) % HUB_RECENT;
    if (room->recent_count < HUB_RECENT)
        room->recent_count++;
}

int
hub_room_recent(const struct hub_room *room, int64_t after_seq,
                hub_recent_fn fn, void *arg)
{
    unsigned first = (room->recent_next + HUB_RECENT - room->recent_count) %
                     HUB_RECENT;
    int64_t oldest;

    if (after_seq >= room->last_seq)
        return 0;
    if (room->recent_count == 0)
        return -1;
    oldest = room->recent[first]->seq;
    if (after_seq + 1 < oldest)
        return -1;
    for (unsigned i = 0; i < room->recent_count; i++) {
        struct hub_event *ev = room->recent[(first + i) % HUB_RECENT];

        if (ev->seq > after_seq && fn(arg, ev) != 0)
            return -1;
    }
    return 0;
}

/* Hands ev to every subscriber of room that does not have it yet. */
static void
room_deliver(struct hub *hub, struct hub_room *room, struct hub_event *ev)
{
    struct hub_sub *sub = room->subs;

    while (sub != NULL) {
        struct hub_sub *next = sub->next;

        if (ev->seq == 0 || ev->seq > sub->seq) {
            if (ev->seq != 0)
                sub->seq = ev->seq;
            hub->deliver(hub->ctx, sub, ev);
        }
        sub = next;
    }
    if (ev->seq > room->last_seq) {
        room->last_seq = ev->seq;
        remember(room, ev);
    }
}

void
hub_deliver_local(struct hub *hub, struct hub_event *ev)
{
    struct hub_room *room = hub_room_find(hub, ev->room);

    if (room != NULL)
        room_deliver(hub, room, ev);
}

struct fill_ctx {
    struct hub *hub;
    struct hub_room *room;
    int64_t rows;
};

static int
fill_row(void *arg, int64_t seq, const char *envelope, size_t len)
{
    struct fill_ctx *fc = arg;
    struct hub_event *ev;
    char type[33];

    fc->rows++;
    if (seq <= fc->room->last_seq)
        return 0;
    hub_envelope_type(envelope, len, type, sizeof(type));
    ev = hub_event_new(fc->room->name, type, seq, envelope, len);
    if (ev == NULL)
        return -1;
    room_deliver(fc->hub, fc->room, ev);
    hub_event_unref(ev);
    return 0;
}

/* Reads and delivers the messages of room after its last_seq, up to and
 * including upto_seq (or all, when upto_seq is 0). On failure the room is
 * marked for another try and nothing after the hole is delivered. */
static int
room_fill(struct hub *hub, struct hub_room *room, int64_t upto_seq)
{
    struct fill_ctx fc = {hub, room, 0};

    for (;;) {
        int64_t want = HUB_FILL_PAGE;

        if (upto_seq > 0 && upto_seq - room->last_seq < want)
            want = upto_seq - room->last_seq;
        if (want <= 0)
            break;
        fc.rows = 0;
        if (store_fetch_after(hub->store, room->name, room->last_seq, want,
                              fill_row, &fc, NULL) != 0) {
            room->needs_fill = true;
            return -1;
        }
        if (fc.rows < want)
            break;
    }
    room->needs_fill = false;
    return 0;
}

/* Payload "e <room> <envelope>": an ephemeral event (presence, typing),
 * delivered to whoever listens now, never stored, no seq. Its type and
 * sender are read from the envelope, which SQL built. */
static void
hub_on_ephemeral(struct hub *hub, const char *payload)
{
    char room_name[65];
    int used = 0;
    const char *env;
    json_t *doc;
    struct hub_event *ev;

    if (sscanf(payload, "e %64[A-Za-z0-9_.-] %n", room_name, &used) != 1 ||
        used == 0 || hub_room_find(hub, room_name) == NULL)
        return;
    env = payload + used;
    doc = json_loads(env, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        log_warn("hub", "ignoring an ephemeral event that is not JSON");
        return;
    }
    ev = hub_event_new(room_name,
                       json_string_value(json_object_get(doc, "type"))
                       ? json_string_value(json_object_get(doc, "type"))
                       : "system", 0, env, strlen(env));
    if (ev != NULL) {
        const char *from = json_string_value(json_object_get(doc, "from"));

        snprintf(ev->from, sizeof(ev->from), "%s", from ? from : "");
        hub_deliver_local(hub, ev);
        hub_event_unref(ev);
    }
    json_decref(doc);
}

/* Payload "m <room> <seq> <envelope>" or "M <room> <seq>"; control
 * payloads ("c ...") went to the control callback before this. */
static void
hub_on_notify(struct hub *hub, const char *payload)
{
    char room_name[65];
    int64_t seq;
    int used = 0;
    struct hub_room *room;
    struct hub_event *ev;
    char type[33];
    const char *env;

    if ((payload[0] != 'm' && payload[0] != 'M') ||
        sscanf(payload + 1, " %64[A-Za-z0-9_.-] %" SCNd64 "%n", room_name,
               &seq, &used) != 2) {
        log_warn("hub", "ignoring a notification of unknown form");
        return;
    }
    room = hub_room_find(hub, room_name);
    if (room == NULL || seq <= room->last_seq)
        return;

    /* A hole before this seq, a message too large for the payload, or an
     * earlier failed read: the table has the truth. */
    if (payload[0] == 'M' || room->needs_fill ||
        seq > room->last_seq + 1) {
        room_fill(hub, room, seq);
        return;
    }

    env = payload + 1 + used;
    if (*env == ' ')
        env++;
    hub_envelope_type(env, strlen(env), type, sizeof(type));
    ev = hub_event_new(room_name, type, seq, env, strlen(env));
    if (ev == NULL) {
        room->needs_fill = true;
        return;
    }
    room_deliver(hub, room, ev);
    hub_event_unref(ev);
}

static void
hub_disconnect(struct hub *hub, int64_t now_ms, const char *why)
{
    log_warn("hub", "LISTEN connection lost (%s); retry in %" PRId64
             " ms, %" PRId64 " rooms wait", why, hub->backoff_ms,
             hub->nrooms);
    PQfinish(hub->conn);
    hub->conn = NULL;
    hub->next_connect_ms = now_ms + hub->backoff_ms;
    hub->needs_catchup = true;
}

void
hub_on_readable(struct hub *hub)
{
    PGnotify *n;

    if (hub->conn == NULL)
        return;
    if (!PQconsumeInput(hub->conn) || PQstatus(hub->conn) != CONNECTION_OK) {
        char why[160];

        snprintf(why, sizeof(why), "%s", PQerrorMessage(hub->conn));
        why[strcspn(why, "\n")] = '\0';
        hub_disconnect(hub, 0, why);
        return;
    }
    while ((n = PQnotifies(hub->conn)) != NULL) {
        bool is_ours = strcmp(n->relname, HUB_CHANNEL) == 0;

        if (is_ours && strncmp(n->extra, "c ", 2) == 0) {
            if (hub->control != NULL)
                hub->control(hub->control_ctx, n->extra + 2);
        } else if (is_ours && n->extra[0] == 'e') {
            hub_on_ephemeral(hub, n->extra);
        } else if (is_ours) {
            hub_on_notify(hub, n->extra);
        }
        PQfreemem(n);
    }
    if (hub->batch_done != NULL)
        hub->batch_done(hub->ctx);
}

static int
hub_connect(struct hub *hub)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name",
                          NULL};
    const char *values[] = {hub->conninfo, "3", "roomcast-hub", NULL};
    PGresult *res;

    hub->conn = PQconnectdbParams(keys, values, 1);
    if (hub->conn == NULL || PQstatus(hub->conn) != CONNECTION_OK)
        goto fail;
    res = PQexec(hub->conn, "LISTEN " HUB_CHANNEL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        goto fail;
    }
    PQclear(res);
    if (PQsetnonblocking(hub->conn, 1) != 0)
        goto fail;
    hub->generation++;
    return 0;

fail:
    if (hub->conn != NULL)
        PQfinish(hub->conn);
    hub->conn = NULL;
    return -1;
}

/* After (re)connecting: every room with subscribers reads what was
 * committed since the newest seq it delivered. LISTEN is already active,
 * so nothing committed from now on can fall between the two. */
static void
hub_catchup(struct hub *hub)
{
    bool ok = true;

    for (size_t i = 0; i < hub->nbuckets; i++) {
        for (struct hub_room *r = hub->buckets[i]; r; r = r->hash_next) {
            if (room_fill(hub, r, 0) != 0)
                ok = false;
        }
    }
    hub->needs_catchup = !ok;
    if (hub->batch_done != NULL)
        hub->batch_done(hub->ctx);
}

/* Frees rooms nobody here has listened to for a while; all idle rooms
 * when drop_all (after a lost connection their recent events and
 * last_seq may be stale, and reading them back would be wasted). */
static void
rooms_sweep_idle(struct hub *hub, bool drop_all)
{
    for (size_t i = 0; i < hub->nbuckets; i++) {
        struct hub_room *r = hub->buckets[i];

        while (r != NULL) {
            struct hub_room *next = r->hash_next;

            if (r->nsubs == 0 &&
                (drop_all || hub->now_ms - r->idle_since_ms >= HUB_LINGER_MS))
                room_remove(hub, r);
            r = next;
        }
    }
}

void
hub_tick(struct hub *hub, int64_t now_ms)
{
    hub->now_ms = now_ms;
    rooms_sweep_idle(hub, hub->conn == NULL);
    if (hub->conn == NULL) {
        if (now_ms < hub->next_connect_ms)
            return;
        if (hub_connect(hub) != 0) {
            hub->next_connect_ms = now_ms + hub->backoff_ms;
            hub->backoff_ms *= 2;
            if (hub->backoff_ms > HUB_BACKOFF_MAX_MS)
                hub->backoff_ms = HUB_BACKOFF_MAX_MS;
            return;
        }
        if (hub->generation > 1)
            log_info("hub", "LISTEN connection back; catching up %" PRId64
                     " rooms", hub->nrooms);
        hub->backoff_ms = HUB_BACKOFF_MIN_MS;
        hub->needs_catchup = true;
    }
    if (hub->needs_catchup) {
        hub_catchup(hub);
        return;
    }

    /* A room whose gap read failed while the connection stayed up. */
    for (size_t i = 0; i < hub->nbuckets; i++) {
        for (struct hub_room *r = hub->buckets[i]; r; r = r->hash_next) {
            if (r->needs_fill)
                room_fill(hub, r, 0);
        }
    }
}
