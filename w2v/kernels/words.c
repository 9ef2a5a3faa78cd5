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

typedef struct {
    uint32_t hash;   /* of the word */
    uint32_t index;  /* 0: empty slot, else the word's id + 1 */
} Slot;                /* one array of both: a probe touches one cache line */

typedef struct {
    Slot *slots;
    uint64_t mask;
    int64_t *starts;   /* distinct word i is words[starts[i]:starts[i + 1] - 1] (a space follows each) */
    int64_t *counts;   /* occurrences of word i so far */
    int64_t distinct, starts_cap;
    char *words;
    int64_t words_len, words_cap;
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

/* The index of the word just written at words + words_len (len bytes), adding it if new; -1: no memory.
   The caller has made room for the word and its space (w2v_words_number reserves a block's worth). */
static int64_t table_index(Table *t, int64_t len, uint32_t hash) {
    const char *word = t->words + t->words_len;
    uint64_t j = hash & t->mask;
    for (; t->slots[j].index; j = (j + 1) & t->mask) {
        if (t->slots[j].hash != hash) continue;
        int64_t k = t->slots[j].index - 1, start = t->starts[k];
        if (t->starts[k + 1] - 1 - start == len && memcmp(t->words + start, word, (size_t)len) == 0) return k;
    }
    if (t->distinct + 2 > t->starts_cap) {
        int64_t cap = t->starts_cap * 2;
        int64_t *starts = realloc(t->starts, (size_t)cap * sizeof(int64_t));
        if (!starts) return -1;
        t->starts = starts;
        int64_t *counts = realloc(t->counts, (size_t)cap * sizeof(int64_t));
        if (!counts) return -1;
        t->counts = counts;
        t->starts_cap = cap;
    }
    int64_t k = t->distinct++;
    t->counts[k] = 0;
    t->slots[j].index = (uint32_t)(k + 1);
    t->slots[j].hash = hash;
    t->words[t->words_len + len] = ' ';
    t->words_len += len + 1;
    t->starts[k + 1] = t->words_len;
    if ((uint64_t)t->distinct * 2 > t->mask && table_grow(t)) return -1;
    return k;
}

#define FNV_BASIS 2166136261u
#define FNV_PRIME 16777619u

/* Lowercase text[from:to] into the words buffer's free end and number it. */
static int64_t add_ascii(Table *t, const unsigned char *text, int64_t from, int64_t to) {
    char *dst = t->words + t->words_len;
    uint32_t hash = FNV_BASIS;
    for (int64_t i = from; i < to; i++) {
        unsigned char c = text[i];
        c = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
        dst[i - from] = (char)c;
        hash = (hash ^ c) * FNV_PRIME;
    }
    return table_index(t, to - from, hash);
}

/* A numbering of words, kept across blocks: ids in first-seen order. */
void *w2v_words_new(void) {
    init_byte_classes();
    Table *t = calloc(1, sizeof(Table));
    if (!t) return NULL;
    t->mask = (1 << 14) - 1;
    t->slots = calloc(t->mask + 1, sizeof(Slot));
    t->starts_cap = 1 << 12;
    t->starts = malloc((size_t)t->starts_cap * sizeof(int64_t));
    t->counts = malloc((size_t)t->starts_cap * sizeof(int64_t));
    t->words_cap = 1 << 16;
    t->words = malloc((size_t)t->words_cap);
    if (!t->slots || !t->starts || !t->counts || !t->words) {
        free(t->slots); free(t->starts); free(t->counts); free(t->words); free(t);
        return NULL;
    }
    t->starts[0] = 0;
    return t;
}

void w2v_words_free(void *table) {
    Table *t = table;
    if (!t) return;
    free(t->slots);
    free(t->starts);
    free(t->counts);
    free(t->words);
    free(t);
}

int64_t w2v_words_distinct(void *table) { return ((Table *)table)->distinct; }

/* Copy each word's occurrences so far into counts (w2v_words_distinct of them). */
void w2v_words_counts(void *table, int64_t *counts) {
    Table *t = table;
    memcpy(counts, t->counts, (size_t)t->distinct * sizeof(int64_t));
}

/* The distinct words in id order, each followed by a space: *len bytes, valid until the next call. */
const char *w2v_words_text(void *table, int64_t *len) {
    *len = ((Table *)table)->words_len;
    return ((Table *)table)->words;
}

/* Number the words of `text` into the table; ids receives their ids. Returns how many (-1: no memory,
   -2: ids_cap too small, -3: fewer words in `given` than non-ASCII pieces in text).
   given: the words of the non-ASCII pieces, in order, separated by single spaces, each piece's
   words followed by the word "\0" (w2v/words.py's split_block of the pieces joined by '\n'). */
int64_t w2v_words_number(void *table, const char *text_, int64_t n, int punct, const char *given_,
                         int64_t given_len, int32_t *ids, int64_t ids_cap) {
    Table *t = table;
    const unsigned char *text = (const unsigned char *)text_, *given = (const unsigned char *)given_;
    /* Every word of text or given takes at most its own length plus a space in `words`. */
    int64_t need = t->words_len + 2 * n + given_len + 2;
    if (need > t->words_cap) {
        int64_t cap = t->words_cap;
        while (cap < need) cap *= 2;
        char *words = realloc(t->words, (size_t)cap);
        if (!words) return -1;
        t->words = words;
        t->words_cap = cap;
    }
    int64_t count = 0, i = 0, g = 0;
#define ADD(expr)                                     \
    do {                                              \
        if (count >= ids_cap) return -2;              \
        int64_t k_ = (expr);                          \
        if (k_ < 0) return -1;                        \
        t->counts[k_]++;                              \
        ids[count++] = (int32_t)k_;                   \
    } while (0)
    while (i < n) {
        unsigned char c = text[i];
        if (c == '\n') {
            t->words[t->words_len] = '\0';
            ADD(table_index(t, 1, FNV_BASIS * FNV_PRIME)); /* the hash of the one byte 0 */
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
                    memcpy(t->words + t->words_len, given + g, (size_t)(stop - g));
                    ADD(table_index(t, stop - g, hash));
                }
                g = stop + 1;
                if (piece_ends) break;
            }
        } else if (!punct) {
            ADD(add_ascii(t, text, i, end));
        } else {
            int64_t start = i;
            unsigned char kind = byte_classes[text[i]];
            for (int64_t j = i + 1; j <= end; j++) {
                unsigned char next = j < end ? byte_classes[text[j]] : SPACE;
                if (next != kind) {
                    ADD(add_ascii(t, text, start, j));
                    start = j;
                    kind = next;
                }
            }
        }
        i = end;
    }
#undef ADD
    return count;
}
