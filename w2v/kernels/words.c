/* Words of a text block, numbered: w2v/words.py's rules for ASCII text, in C.

   A block is UTF-8 text. It is cut into pieces at ASCII whitespace and control characters
   (which the tokenizer turns into spaces) and at '\n' (a line end, which becomes the word
   "\0", w2v/words.py's LINE_END). A piece of ASCII bytes only is lowercased and split here:
   - punct (HF Whitespace, \w+|[^\w\s]+): runs of [0-9a-z_] and runs of other printable ASCII;
   - whitespace (HF WhitespaceSplit): the whole piece is one word.
   A piece holding a byte >= 0x80 is not split here: its words come from the caller, who
   splits those pieces with w2v/words.py (NFKC and Unicode classes). A cut at ASCII whitespace
   or a control character is safe under NFKC: those are starters that compose with nothing,
   so no character on one side of the cut can change a character on the other side.

   A table numbers the words of every block it is given: each word (the line end too) gets
   the next id when first seen, so ids follow first-seen order over the whole corpus, as
   w2v/encode.py's Python path numbers them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { SPACE, WORD, PUNCT };

/* The class of an ASCII byte inside a piece (never SPACE there): a table, read once per byte. */
static unsigned char byte_classes[128];

static void init_byte_classes(void) {
    for (int c = 0; c < 128; c++) {
        int word = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        byte_classes[c] = (c <= 0x20 || c == 0x7f) ? SPACE : word ? WORD : PUNCT;
    }
}

/* Where a piece ends: the first SPACE or LINE byte from `i` on (or n). */
static int64_t piece_end(const unsigned char *text, int64_t i, int64_t n, int *high) {
    unsigned char any = 0;
    for (; i < n; i++) {
        unsigned char c = text[i];
        if (c <= 0x20 || c == 0x7f) break;
        any |= c;
    }
    *high = any >= 0x80;
    return i;
}

int64_t w2v_nonascii_pieces(const char *text_, int64_t n, char *out, int64_t out_cap, int64_t *pieces) {
    /* Copy every piece holding a byte >= 0x80 into out, each followed by '\n'; returns the bytes
       written (-1 if out_cap is too small) and sets *pieces to their number. */
    const unsigned char *text = (const unsigned char *)text_;
    int64_t written = 0, count = 0, i = 0;
    while (i < n) {
        unsigned char c = text[i];
        if (c <= 0x20 || c == 0x7f) { i++; continue; }
        int high;
        int64_t end = piece_end(text, i, n, &high);
        if (high) {
            if (written + (end - i) + 1 > out_cap) return -1;
            memcpy(out + written, text + i, (size_t)(end - i));
            written += end - i;
            out[written++] = '\n';
            count++;
        }
        i = end;
    }
    *pieces = count;
    return written;
}

/* The table. Over a long-tailed corpus most of its lookups miss every cache (10M distinct words
   take about 400 MB), so a block is numbered in two passes: the first splits it into words and
   hashes them; the second looks them up in order, each while the memory of the words a few
   places ahead is already being fetched: its slot, then its entry, then its bytes (three
   dependent loads, each prefetched AHEAD words after the one before). */
enum { AHEAD = 8 };

typedef struct {
    uint32_t hash;   /* of the word */
    uint32_t index;  /* 0: empty slot, else the word's id + 1 */
} Slot;                /* one array of both: a probe touches one cache line */

typedef struct {
    int64_t start;   /* the word is words[start:start + its length], a space after it */
    int64_t count;   /* occurrences so far */
} Entry;               /* together: one cache line for both */

typedef struct {
    int64_t start;   /* in the block's lowercased copy (scratch) */
    int64_t len;
    uint32_t hash;
} Pending;             /* a word of the block, split and hashed, not yet numbered */

typedef struct {
    Slot *slots;
    uint64_t mask;
    Entry *entries;    /* by id */
    int64_t distinct, entries_cap;
    char *words;       /* every distinct word in id order, each followed by a space (no word holds one) */
    int64_t words_len, words_cap;
    char *scratch;     /* the block's words, lowercased */
    int64_t scratch_cap;
    Pending *pending;  /* the block's words, in text order */
    int64_t pending_cap;
} Table;

static int table_grow(Table *t) {
    uint64_t size = (t->mask + 1) * 2;
    Slot *slots = calloc(size, sizeof(Slot));
    if (!slots) return -1;
    for (uint64_t s = 0; s <= t->mask; s++) {
        if (!t->slots[s].index) continue;
        uint64_t j = t->slots[s].hash & (size - 1);
        while (slots[j].index) j = (j + 1) & (size - 1);
        slots[j] = t->slots[s];
    }
    free(t->slots);
    t->slots = slots;
    t->mask = size - 1;
    return 0;
}

/* The id of a word (its bytes at `word`), adding it if new; -1: no memory.
   Equal words: same bytes, and the stored word ends where this one does (its space follows).
   The caller has made room in `words` for the word and its space. */
static int64_t table_index(Table *t, const char *word, int64_t len, uint32_t hash) {
    uint64_t j = hash & t->mask;
    for (; t->slots[j].index; j = (j + 1) & t->mask) {
        if (t->slots[j].hash != hash) continue;
        int64_t k = t->slots[j].index - 1, start = t->entries[k].start;
        /* The stored word has no space inside, so a shorter one differs at its space; reading
           past it stays inside the buffer: words_cap holds the words being added too. */
        if (memcmp(t->words + start, word, (size_t)len) == 0 && t->words[start + len] == ' ') return k;
    }
    if (t->distinct + 1 > t->entries_cap) {
        int64_t cap = t->entries_cap * 2;
        Entry *entries = realloc(t->entries, (size_t)cap * sizeof(Entry));
        if (!entries) return -1;
        t->entries = entries;
        t->entries_cap = cap;
    }
    int64_t k = t->distinct++;
    t->entries[k].start = t->words_len;
    t->entries[k].count = 0;
    t->slots[j].index = (uint32_t)(k + 1);
    t->slots[j].hash = hash;
    memcpy(t->words + t->words_len, word, (size_t)len);
    t->words[t->words_len + len] = ' ';
    t->words_len += len + 1;
    if ((uint64_t)t->distinct * 2 > t->mask && table_grow(t)) return -1;
    return k;
}

#define FNV_BASIS 2166136261u
#define FNV_PRIME 16777619u

/* Lowercase text[from:to] into the scratch buffer's free end and queue it. */
static void queue_ascii(Table *t, int64_t *used, int64_t *queued, const unsigned char *text, int64_t from,
                        int64_t to) {
    char *dst = t->scratch + *used;
    uint32_t hash = FNV_BASIS;
    for (int64_t i = from; i < to; i++) {
        unsigned char c = text[i];
        c = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
        dst[i - from] = (char)c;
        hash = (hash ^ c) * FNV_PRIME;
    }
    t->pending[(*queued)++] = (Pending){*used, to - from, hash};
    *used += to - from;
}

/* A numbering of words, kept across blocks: ids in first-seen order. */
void *w2v_words_new(void) {
    init_byte_classes();
    Table *t = calloc(1, sizeof(Table));
    if (!t) return NULL;
    t->mask = (1 << 14) - 1;
    t->slots = calloc(t->mask + 1, sizeof(Slot));
    t->entries_cap = 1 << 12;
    t->entries = malloc((size_t)t->entries_cap * sizeof(Entry));
    t->words_cap = 1 << 16;
    t->words = malloc((size_t)t->words_cap);
    if (!t->slots || !t->entries || !t->words) {
        free(t->slots); free(t->entries); free(t->words); free(t);
        return NULL;
    }
    return t;
}

void w2v_words_free(void *table) {
    Table *t = table;
    if (!t) return;
    free(t->slots);
    free(t->entries);
    free(t->words);
    free(t->scratch);
    free(t->pending);
    free(t);
}

int64_t w2v_words_distinct(void *table) { return ((Table *)table)->distinct; }

/* Bytes of the table that grow with the distinct words: its slots, their entries, their text. */
int64_t w2v_words_bytes(void *table) {
    Table *t = table;
    return (int64_t)((t->mask + 1) * sizeof(Slot)) + t->distinct * (int64_t)sizeof(Entry) + t->words_len;
}

/* Where each word starts in w2v_words_text, and its length at the end (w2v_words_distinct + 1 offsets). */
void w2v_words_starts(void *table, int64_t *starts) {
    Table *t = table;
    for (int64_t k = 0; k < t->distinct; k++) starts[k] = t->entries[k].start;
    starts[t->distinct] = t->words_len;
}

/* Copy each word's occurrences so far into counts (w2v_words_distinct of them). */
void w2v_words_counts(void *table, int64_t *counts) {
    Table *t = table;
    for (int64_t k = 0; k < t->distinct; k++) counts[k] = t->entries[k].count;
}

/* The distinct words in id order, each followed by a space: *len bytes, valid until the next call. */
const char *w2v_words_text(void *table, int64_t *len) {
    *len = ((Table *)table)->words_len;
    return ((Table *)table)->words;
}

static int reserve(void **buffer, int64_t *cap, int64_t need, size_t item) {
    if (need <= *cap) return 0;
    int64_t size = *cap ? *cap : 1 << 16;
    while (size < need) size *= 2;
    void *grown = realloc(*buffer, (size_t)size * item);
    if (!grown) return -1;
    *buffer = grown;
    *cap = size;
    return 0;
}

/* Pass 1: split `text` (and take the words of its non-ASCII pieces from `given`) into t->pending.
   Returns how many words (-3: fewer words in `given` than non-ASCII pieces in text). */
static int64_t split_words(Table *t, const unsigned char *text, int64_t n, int punct, const unsigned char *given,
                           int64_t given_len) {
    int64_t queued = 0, used = 0, i = 0, g = 0;
    while (i < n) {
        unsigned char c = text[i];
        if (c == '\n') {
            t->scratch[used] = '\0';
            t->pending[queued++] = (Pending){used, 1, FNV_BASIS * FNV_PRIME}; /* the hash of the one byte 0 */
            used++;
            i++;
            continue;
        }
        if (c <= 0x20 || c == 0x7f) { i++; continue; }
        int high;
        int64_t end = piece_end(text, i, n, &high);
        if (high) {
            /* This piece's words from `given`, up to its "\0" word. */
            for (;;) {
                if (g >= given_len) return -3;
                int64_t stop = g;
                uint32_t hash = FNV_BASIS;
                while (stop < given_len && given[stop] != ' ') {
                    hash = (hash ^ given[stop]) * FNV_PRIME;
                    stop++;
                }
                int piece_ends = stop - g == 1 && given[g] == '\0';
                if (!piece_ends) {
                    memcpy(t->scratch + used, given + g, (size_t)(stop - g));
                    t->pending[queued++] = (Pending){used, stop - g, hash};
                    used += stop - g;
                }
                g = stop + 1;
                if (piece_ends) break;
            }
        } else if (!punct) {
            queue_ascii(t, &used, &queued, text, i, end);
        } else {
            int64_t start = i;
            unsigned char kind = byte_classes[text[i]];
            for (int64_t j = i + 1; j <= end; j++) {
                unsigned char next = j < end ? byte_classes[text[j]] : SPACE;
                if (next != kind) {
                    queue_ascii(t, &used, &queued, text, start, j);
                    start = j;
                    kind = next;
                }
            }
        }
        i = end;
    }
    return queued;
}

/* The id of the word in `p`'s slot, if that slot holds a word of the same hash; else -1 (a hint only). */
static inline int64_t first_probe(const Table *t, const Pending *p) {
    Slot s = t->slots[p->hash & t->mask];
    return s.index && s.hash == p->hash ? (int64_t)s.index - 1 : -1;
}

/* Number the words of `text` into the table; ids receives their ids. Returns how many (-1: no memory,
   -2: ids_cap too small, -3: fewer words in `given` than non-ASCII pieces in text).
   given: the words of the non-ASCII pieces, in order, separated by single spaces, each piece's
   words followed by the word "\0" (w2v/words.py's split_block of the pieces joined by '\n'). */
int64_t w2v_words_number(void *table, const char *text_, int64_t n, int punct, const char *given_,
                         int64_t given_len, int32_t *ids, int64_t ids_cap) {
    Table *t = table;
    /* Each word takes at least one byte of text or given (a line end: its '\n'). */
    int64_t most = n + given_len + 1;
    if (reserve((void **)&t->scratch, &t->scratch_cap, most, 1) ||
        reserve((void **)&t->pending, &t->pending_cap, most, sizeof(Pending)) ||
        /* Every new word takes at most its own length plus a space in `words`. */
        reserve((void **)&t->words, &t->words_cap, t->words_len + 2 * most, 1))
        return -1;
    int64_t count = split_words(t, (const unsigned char *)text_, n, punct, (const unsigned char *)given_, given_len);
    if (count < 0) return count;
    if (count > ids_cap) return -2;
    const Pending *p = t->pending;
    for (int64_t i = 0; i < count; i++) {
        if (i + 3 * AHEAD < count) __builtin_prefetch(&t->slots[p[i + 3 * AHEAD].hash & t->mask]);
        if (i + 2 * AHEAD < count) {
            int64_t k = first_probe(t, &p[i + 2 * AHEAD]);
            if (k >= 0) __builtin_prefetch(&t->entries[k], 1);
        }
        if (i + AHEAD < count) {
            int64_t k = first_probe(t, &p[i + AHEAD]);
            if (k >= 0) __builtin_prefetch(t->words + t->entries[k].start);
        }
        int64_t k = table_index(t, t->scratch + p[i].start, p[i].len, p[i].hash);
        if (k < 0) return -1;
        t->entries[k].count++;
        ids[i] = (int32_t)k;
    }
    return count;
}
