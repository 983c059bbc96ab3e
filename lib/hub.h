/*
 * hub.h - this process's one LISTEN connection and its fan-out.
 *
 * The hub reads notifications of channel "roomcast" inside the event loop
 * and hands each message to the local subscribers of its room, in seq
 * order, each message once per subscriber. A notification whose seq skips
 * ahead means one was missed, so the gap is read from the table before
 * anything is delivered; a message too large for a notification is read
 * the same way. When the connection drops, the hub reconnects with
 * backoff, listens again and then reads, for every room with subscribers,
 * what was committed meanwhile. Delivery never depends on NOTIFY being
 * reliable, only on the table.
 *
 * The hub never writes to a client: the transport gives it a delivery
 * callback. Everything here runs on the event loop's thread.
 */
#ifndef ROOMCAST_HUB_H
#define ROOMCAST_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct hub;
struct hub_room;

/* One message or event, shared by every subscriber it goes to. The hub
 * holds one reference while delivering; a transport that keeps the event
 * after its callback returns takes its own with hub_event_ref(). */
struct hub_event {
    int refs;
    int64_t seq;                /* 0 for an ephemeral event */
    char room[65];
    char type[33];
    char from[65];              /* ephemeral events: the user, or "" */
    size_t envelope_len;
    const char *envelope;       /* compact JSON, one line */

    /* A transport's encoding of this event, made by the first subscriber
     * that needs it and reused by the others (freed with the event). */
    char *encoded;
    size_t encoded_len;
    size_t encoded_tail;        /* where the per-room-independent part
                                 * of the encoding starts */
};

/* A subscription of one transport connection to one room. Embedded in
 * the transport's own structure; the hub links it into the room. */
struct hub_sub {
    struct hub_sub *prev;
    struct hub_sub *next;
    struct hub_room *room;
    int64_t seq;                /* last stored seq this subscriber has */
};

/* Called for each event a subscriber should get (already in order and
 * not seen before by it; sub->seq is updated before the call). */
typedef void (*hub_deliver_fn)(void *ctx, struct hub_sub *sub,
                               struct hub_event *ev);
/* Called after a batch of deliveries, so the transport can flush what it
 * gathered (long-poll answers, coalesced writes). */
typedef void (*hub_batch_fn)(void *ctx);

/* Called for a control notification ("c <what> ..."): revocations and
 * kicks, which every process must act on. text starts after "c ". */
typedef void (*hub_control_fn)(void *ctx, const char *text);

struct hub *hub_new(const char *conninfo, struct store *store,
                    hub_deliver_fn deliver, hub_batch_fn batch_done,
                    void *ctx);
void hub_free(struct hub *hub);

/* Sets the receiver of control notifications. */
void hub_set_control(struct hub *hub, hub_control_fn fn, void *ctx);

/* The socket to watch for input, or -1 while disconnected. It changes on
 * every reconnect; hub_generation() tells the loop when to re-register. */
int hub_fd(const struct hub *hub);
unsigned hub_generation(const struct hub *hub);
bool hub_is_live(const struct hub *hub);

/* Reads and delivers what arrived on the LISTEN connection. */
void hub_on_readable(struct hub *hub);

/* Called several times a second: reconnects when due, retries a catch-up
 * that failed. now_ms is a monotonic clock. */
void hub_tick(struct hub *hub, int64_t now_ms);

/* Called per recent event, oldest first; return non-zero to stop. */
typedef int (*hub_recent_fn)(void *arg, struct hub_event *ev);

/* Hands fn the stored events of room after after_seq, up to the room's
 * last_seq, from memory. Returns 0 when memory held all of them (none is
 * fine), -1 when some are older than what the room keeps (read the
 * table instead) or fn stopped. */
int hub_room_recent(const struct hub_room *room, int64_t after_seq,
                    hub_recent_fn fn, void *arg);

/* The room as this process knows it, or NULL when nobody here listens
 * (a room stays known for a while after its last subscriber left). */
struct hub_room *hub_room_find(struct hub *hub, const char *name);
int64_t hub_room_last_seq(const struct hub_room *room);
const char *hub_room_name(const struct hub_room *room);

/* Links sub into room (created when absent). sub->seq must be the last
 * seq the subscriber already has. room_last_seq is the room's newest seq
 * as the caller just read it; it only matters when the room is new here,
 * and then must not be ahead of what the subscriber has been sent.
 * Returns 0, or -1 when out of memory (sub not linked). */
__attribute__((warn_unused_result))
int hub_subscribe(struct hub *hub, const char *room, int64_t room_last_seq,
                  struct hub_sub *sub);
void hub_unsubscribe(struct hub *hub, struct hub_sub *sub);

/* Makes an event from an envelope (copied). NULL when out of memory. */
struct hub_event *hub_event_new(const char *room, const char *type,
                                int64_t seq, const char *envelope,
                                size_t envelope_len);
void hub_event_ref(struct hub_event *ev);
void hub_event_unref(struct hub_event *ev);

/* Delivers an ephemeral event to the subscribers of its room here. */
void hub_deliver_local(struct hub *hub, struct hub_event *ev);

/* The type of a stored message's envelope, which roomcast.envelope()
 * always writes first; "message" when it cannot be read. */
void hub_envelope_type(const char *envelope, size_t len, char *type,
                       size_t size);

/* Counters for the worker row and the log. */
int64_t hub_rooms_count(const struct hub *hub);

#endif
