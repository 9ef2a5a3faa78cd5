/* Pairs of adjacent word ids, for w2v/phrases.py: counted in one hash table, then joined.

   The id stream is w2v/encode.py's provisional one: int32 ids with LINE_END (0) after every
   line. A pair (a, b) is two neighbours inside a line, so neither is 0, and the key
   (a << 32) | b is never 0: 0 marks an empty slot.

   One table type serves both steps: while counting, a slot's value is the pair's count;
   for joining, the caller fills a fresh table with the accepted pairs and the id of each
   one's phrase. Both steps take the stream in pieces of any size and carry across a cut what
   they need (the last id; the token held back), so a line may be longer than any piece. */
#include <stdint.h>
#include <stdlib.h>

#define LINE_END 0
#define NO_TOKEN (-1)
#define PREFETCH_AHEAD 16 /* pairs: a slot is requested this far ahead of its update */

typedef struct {
    uint64_t key;   /* (a << 32) | b; 0: empty */
    int64_t value;  /* a count, or a phrase id */
} Slot;             /* key and value in one array: a probe touches one cache line */

typedef struct {
    Slot *slots;
    uint64_t mask;
    int shift;        /* 64 - log2(slots): the hash is the top bits of key * a large odd constant */
    int64_t size;
    int32_t last;     /* counting: the id before the current piece (LINE_END at a line start) */
    int32_t pending;  /* joining: the token held back until its successor is seen (NO_TOKEN: none) */
} Pairs;

static inline uint64_t slot_of(const Pairs *t, uint64_t key) {
    return (key * 0x9E3779B97F4A7C15ull) >> t->shift;
}

static int allocate(Pairs *t, int bits) {
    t->slots = calloc((size_t)1 << bits, sizeof(Slot));
    if (!t->slots) return -1;
    t->mask = ((uint64_t)1 << bits) - 1;
    t->shift = 64 - bits;
    return 0;
}

static int grow(Pairs *t) {
    Slot *old = t->slots;
    uint64_t old_size = t->mask + 1;
    if (allocate(t, 64 - t->shift + 1)) {
        t->slots = old;
        return -1;
    }
    for (uint64_t s = 0; s < old_size; s++) {
        if (!old[s].key) continue;
        uint64_t j = slot_of(t, old[s].key);
        while (t->slots[j].key) j = (j + 1) & t->mask;
        t->slots[j] = old[s];
    }
    free(old);
    return 0;
}

/* The slot of key, claimed (value 0) if the key is new; NULL: no memory. */
static Slot *claim(Pairs *t, uint64_t key) {
    uint64_t j = slot_of(t, key);
    while (t->slots[j].key) {
        if (t->slots[j].key == key) return &t->slots[j];
        j = (j + 1) & t->mask;
    }
    if ((uint64_t)(t->size + 1) * 2 > t->mask + 1) {  /* keep the load under a half: short probes */
        if (grow(t)) return NULL;
        return claim(t, key);
    }
    t->slots[j].key = key;
    t->slots[j].value = 0;
    t->size++;
    return &t->slots[j];
}

/* The value of key, or -1 if absent. */
static inline int64_t find(const Pairs *t, uint64_t key) {
    uint64_t j = slot_of(t, key);
    while (t->slots[j].key) {
        if (t->slots[j].key == key) return t->slots[j].value;
        j = (j + 1) & t->mask;
    }
    return -1;
}

static inline uint64_t key_of(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

void *w2v_pairs_new(void) {
    Pairs *t = calloc(1, sizeof(Pairs));
    if (!t) return NULL;
    if (allocate(t, 16)) {
        free(t);
        return NULL;
    }
    t->last = LINE_END;
    t->pending = NO_TOKEN;
    return t;
}

void w2v_pairs_free(void *table) {
    Pairs *t = table;
    if (!t) return;
    free(t->slots);
    free(t);
}

int64_t w2v_pairs_size(void *table) { return ((Pairs *)table)->size; }

/* Count the pairs of the next piece of the stream (continuing the previous piece's last line).
   Returns 0, or -1: no memory (the counts are then incomplete). */
int w2v_pairs_count(void *table, const int32_t *ids, int64_t n) {
    Pairs *t = table;
    int32_t last = t->last;
    for (int64_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (i + PREFETCH_AHEAD < n) {
            /* The slot a later pair will probe: random in a table larger than the caches. */
            __builtin_prefetch(&t->slots[slot_of(t, key_of(ids[i + PREFETCH_AHEAD - 1], ids[i + PREFETCH_AHEAD]))]);
        }
        if (last != LINE_END && id != LINE_END) {
            Slot *slot = claim(t, key_of(last, id));
            if (!slot) return -1;
            slot->value++;
        }
        last = id;
    }
    t->last = last;
    return 0;
}

/* Every pair and its value, in slot order: w2v_pairs_size of each. */
void w2v_pairs_items(void *table, int32_t *a, int32_t *b, int64_t *values) {
    Pairs *t = table;
    int64_t k = 0;
    for (uint64_t s = 0; s <= t->mask; s++) {
        uint64_t key = t->slots[s].key;
        if (!key) continue;
        a[k] = (int32_t)(key >> 32);
        b[k] = (int32_t)(key & 0xffffffffu);
        values[k++] = t->slots[s].value;
    }
}

/* Set the value of n pairs (added if new). Returns 0, or -1: no memory. */
int w2v_pairs_set(void *table, const int32_t *a, const int32_t *b, const int64_t *values, int64_t n) {
    Pairs *t = table;
    for (int64_t i = 0; i < n; i++) {
        Slot *slot = claim(t, key_of(a[i], b[i]));
        if (!slot) return -1;
        slot->value = values[i];
    }
    return 0;
}

/* Rewrite the next piece of the stream, joining the table's pairs into their phrase ids,
   left to right: a token joined with its left neighbour cannot start a phrase with its right one.
   The last token of a piece is held back (its successor may join it) and written with the next
   piece, or at the end (final != 0). Each id written is counted in counts (indexed by id).
   out holds n + 1 ids. Returns how many ids were written. */
int64_t w2v_pairs_join(void *table, const int32_t *ids, int64_t n, int32_t *out, int64_t *counts, int final) {
    Pairs *t = table;
    int32_t pending = t->pending;
    int64_t w = 0;
#define EMIT(id_)              \
    do {                       \
        int32_t e_ = (id_);    \
        out[w++] = e_;         \
        counts[e_]++;          \
    } while (0)
    for (int64_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id == LINE_END) {
            if (pending != NO_TOKEN) EMIT(pending);
            EMIT(LINE_END);
            pending = NO_TOKEN;
            continue;
        }
        if (pending == NO_TOKEN) {
            pending = id;
            continue;
        }
        int64_t phrase = t->size ? find(t, key_of(pending, id)) : -1;
        if (phrase >= 0) {
            EMIT((int32_t)phrase);
            pending = NO_TOKEN;
        } else {
            EMIT(pending);
            pending = id;
        }
    }
    if (final && pending != NO_TOKEN) {
        EMIT(pending);
        pending = NO_TOKEN;
    }
#undef EMIT
    t->pending = pending;
    return w;
}
