/* Skip-gram and CBOW with negative sampling or hierarchical softmax, word2vec.c-style, over a chunk
   of token ids.

   Each example is applied at once, in text order (per-example SGD, as word2vec.c and
   gensim do), so no batch ever sums updates to a frequent row. Threads split a chunk's
   centre positions into contiguous runs and update the shared tables without locks
   (Hogwild): collisions are rare and harmless, which is what word2vec.c relies on. The exception is
   the top of hierarchical softmax's tree, which every example writes: there each thread keeps its own
   copy and merges it (HotRows).

   Conventions shared with w2v/objective.py:
   - skip-gram: the centre word's input row predicts each context word's output row;
   - CBOW: the mean of the context input rows predicts the centre's output row, and the
     full error goes back to every context row (word2vec's update, gensim's cbow_mean=1);
   - a negative equal to the target is skipped, not redrawn (gensim);
   - the sigmoid is exact to float precision (table + linear interpolation inside
     [-8, 8], expf outside), so one step matches autograd's.
   The unigram^0.75 noise is drawn with an alias table: one 64-bit random number per draw.
   Hierarchical softmax (a Tree passed in, w2v/huffman.py): the hidden vector is scored against the
   output rows of the inner nodes on the predicted word's Huffman path, label 1 - code (word2vec.c's).

   Under torchrun the caller may pass a byte per row of each table: the kernel sets it to 1 on
   every row it writes, so that the table sync (w2v/table_sync.py) compares only those rows with
   their copy from the last sync instead of the whole tables. Threads race on these bytes
   harmlessly: every writer writes 1. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_RANGE 8.0f
/* Hierarchical softmax leaves an inner node alone once |score| reaches this (word2vec.c's and gensim's
   MAX_EXP): its loss still counts, its update is skipped. Measured to matter for skip-gram's analogy
   score (docs/performance.md, "Hierarchical softmax"); w2v/objective.py's HS_MAX_SCORE is the same. */
#define HS_MAX_SCORE 6.0f
#define MAX_NEGATIVE_AHEAD 64 /* negatives an example may draw (w2v/kernels/sgns.py MAX_NEGATIVE) */
#define TABLE_SIZE 4096 /* intervals over [-TABLE_RANGE, TABLE_RANGE] */

static float sigmoid_table[TABLE_SIZE + 1];
static float softplus_table[TABLE_SIZE + 1]; /* log(1 + e^x) */

void w2v_init_tables(void) {
    for (int i = 0; i <= TABLE_SIZE; i++) {
        double x = -TABLE_RANGE + 2.0 * TABLE_RANGE * i / TABLE_SIZE;
        sigmoid_table[i] = (float)(1.0 / (1.0 + exp(-x)));
        softplus_table[i] = (float)(x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)));
    }
}

static inline float interpolate(const float *table, float x) {
    float t = (x + TABLE_RANGE) * (TABLE_SIZE / (2.0f * TABLE_RANGE));
    int i = (int)t;
    if (i >= TABLE_SIZE) i = TABLE_SIZE - 1;
    float frac = t - (float)i;
    return table[i] + frac * (table[i + 1] - table[i]);
}

static inline float sigmoid(float x) {
    if (x > -TABLE_RANGE && x < TABLE_RANGE) return interpolate(sigmoid_table, x);
    return 1.0f / (1.0f + expf(-x));
}

static inline float softplus(float x) { /* -log(sigmoid(-x)) */
    if (x > -TABLE_RANGE && x < TABLE_RANGE) return interpolate(softplus_table, x);
    return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

static inline float dot(const float *restrict a, const float *restrict b, int64_t dim) {
    float s = 0.0f;
    for (int64_t i = 0; i < dim; i++) s += a[i] * b[i];
    return s;
}

static inline void axpy(float *restrict y, float a, const float *restrict x, int64_t dim) {
    for (int64_t i = 0; i < dim; i++) y[i] += a * x[i];
}

/* splitmix64: tiny state, good enough statistics for sampling, one per thread. */
static inline uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    const uint32_t *threshold; /* keep bucket i with probability threshold[i] / 2^32 */
    const int32_t *alias;      /* otherwise take alias[i] */
    int64_t size;
} Noise;

static inline int64_t draw_noise(const Noise *noise, uint64_t *state) {
    uint64_t r = next_random(state);
    uint64_t bucket = ((r >> 32) * (uint64_t)noise->size) >> 32;
    return ((uint32_t)r < noise->threshold[bucket]) ? (int64_t)bucket : (int64_t)noise->alias[bucket];
}

/* Vose's alias method for weights (n,) >= 0, not all zero. Returns 0, or -1 when out of memory. */
int w2v_build_alias(const double *weights, int64_t n, uint32_t *threshold, int32_t *alias) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) total += weights[i];
    double *scaled = malloc(sizeof(double) * n);
    int64_t *small = malloc(sizeof(int64_t) * n), *large = malloc(sizeof(int64_t) * n);
    if (!scaled || !small || !large) { free(scaled); free(small); free(large); return -1; }
    int64_t n_small = 0, n_large = 0;
    for (int64_t i = 0; i < n; i++) {
        scaled[i] = weights[i] * (double)n / total;
        if (scaled[i] < 1.0) small[n_small++] = i; else large[n_large++] = i;
    }
    while (n_small > 0 && n_large > 0) {
        int64_t s = small[--n_small], l = large[--n_large];
        threshold[s] = (uint32_t)fmin(scaled[s] * 4294967296.0, 4294967295.0);
        alias[s] = (int32_t)l;
        scaled[l] -= 1.0 - scaled[s];
        if (scaled[l] < 1.0) small[n_small++] = l; else large[n_large++] = l;
    }
    /* What is left has probability 1 up to rounding: it keeps its own bucket. */
    while (n_large > 0) { int64_t l = large[--n_large]; threshold[l] = 4294967295u; alias[l] = (int32_t)l; }
    while (n_small > 0) { int64_t s = small[--n_small]; threshold[s] = 4294967295u; alias[s] = (int32_t)s; }
    free(scaled); free(small); free(large);
    return 0;
}

static inline void prefetch_row(const float *row, int64_t dim) {
    const char *p = (const char *)row;
    for (int64_t b = 0; b < dim * (int64_t)sizeof(float); b += 64) __builtin_prefetch(p + b, 1, 3);
    __builtin_prefetch(p + dim * sizeof(float) - 1, 1, 3);
}

/* One example: `hidden` predicts words[0] (label 1) against words[1..negative] (label 0);
   a negative equal to words[0] is skipped. Output rows are updated at once; the
   input-side gradient accumulates in `work`. Returns the loss. */
static inline __attribute__((always_inline)) double train_example(
        const float *restrict hidden, float *restrict work, float *out, int64_t dim, const int64_t *words,
        int64_t negative, float lr) {
    /* All the scores first: `hidden` is fixed during the example, so the rows' dot products are
       independent and their cache misses overlap instead of queueing behind each update. A row that
       comes twice (a repeated negative) is scored again after its first update, as one-at-a-time would. */
    float score[1 + MAX_NEGATIVE_AHEAD];
    for (int64_t d = 0; d <= negative; d++) score[d] = dot(hidden, out + words[d] * dim, dim);
    double loss = 0.0;
    memset(work, 0, sizeof(float) * dim);
    for (int64_t d = 0; d <= negative; d++) {
        if (d > 0 && words[d] == words[0]) continue;
        float *row = out + words[d] * dim;
        for (int64_t e = 1; e < d; e++)
            if (words[e] == words[d]) { score[d] = dot(hidden, row, dim); break; }
        float label = d == 0 ? 1.0f : 0.0f;
        float g = (label - sigmoid(score[d])) * lr;
        loss += d == 0 ? softplus(-score[d]) : softplus(score[d]);
        axpy(work, g, row, dim);
        axpy(row, g, hidden, dim);
    }
    return loss;
}

/* train_example with the common dimensions as constants, as train_path does for hierarchical softmax:
   skip-gram 0.86x the time at dim 100 (one thread, manuals.txt's ids; docs/performance.md, "Session 15"). */
static double train_negatives(const float *restrict hidden, float *restrict work, float *out, int64_t dim,
                              const int64_t *words, int64_t negative, float lr) {
    switch (dim) {
    case 50: return train_example(hidden, work, out, 50, words, negative, lr);
    case 100: return train_example(hidden, work, out, 100, words, negative, lr);
    case 128: return train_example(hidden, work, out, 128, words, negative, lr);
    case 200: return train_example(hidden, work, out, 200, words, negative, lr);
    case 300: return train_example(hidden, work, out, 300, words, negative, lr);
    default: return train_example(hidden, work, out, dim, words, negative, lr);
    }
}

typedef struct {
    const uint8_t *codes;   /* (vocab, width): the bits of each word's path, root first */
    const int32_t *points;  /* (vocab, width): the inner nodes' output rows on that path */
    const int32_t *lengths; /* (vocab,) */
    int64_t width;
    const float *node_lr;   /* (vocab-1,) learning-rate scale of each inner node's row, or NULL: 1
                               (inner-node subsampling, w2v/huffman.py) */
} Tree;

/* Every hierarchical-softmax example passes the root and the nodes just below it, so with two or more
   threads these few rows are written by all of them at once and their cache lines bounce between the
   cores: two threads then trained skip-gram hs barely faster than one. Each thread therefore trains its
   own copy of the HS_HOT_ROWS most used inner nodes (the last made: rows lo..lo+count-1, the root last)
   and adds what it learned into the shared rows every HS_MERGE_EVERY examples and at the end of each block
   it claims (merge_hot_rows); the other threads see those updates that much later, which Hogwild's
   unordered updates already allow. Measured on 2M tokens with 2 threads (docs/performance.md,
   "Hierarchical softmax"): 0.6-0.9x the time, for 0.05-0.1 % more loss than shared rows. Copying more rows
   or merging less often saved no more time and cost more loss (128 rows merged every 128 centres: +0.9 %,
   and 0.3 analogy points on a 7M-word corpus). One thread uses the shared rows directly (count 0, lo past
   every row), so its results are unchanged. */
#define HS_HOT_ROWS 32
#define HS_MERGE_EVERY 48 /* examples: about 9 skip-gram centres, or 48 CBOW ones */
typedef struct {
    float *rows;  /* (count, dim): this thread's copy */
    float *base;  /* (count, dim): the shared rows as last read, to find what this thread added */
    int64_t lo, count;
    unsigned char *lock; /* shared by the threads of a chunk: held while one merges */
} HotRows;

static const HotRows NO_HOT_ROWS = {NULL, NULL, INT64_MAX, 0, NULL};

/* Start a thread's copy of its hot rows from the shared ones; with no hot rows, point `lo` past every row.
   Returns 0 when out of memory (what was allocated is left in `hot` for the caller to free). */
static int copy_hot_rows(HotRows *hot, const float *out, int64_t dim) {
    if (hot->count == 0) { hot->lo = INT64_MAX; return 1; }
    hot->rows = malloc(sizeof(float) * hot->count * dim);
    hot->base = malloc(sizeof(float) * hot->count * dim);
    if (!hot->rows || !hot->base) return 0;
    memcpy(hot->rows, out + hot->lo * dim, sizeof(float) * hot->count * dim);
    memcpy(hot->base, hot->rows, sizeof(float) * hot->count * dim);
    return 1;
}

/* Add this thread's change of its hot rows since the last merge into the shared rows, then read them back
   (with the other threads' merges in them) as the new copy and base. Only merges write the shared hot rows,
   and one at a time (`lock`): two threads merging at once would otherwise lose one's change, and at a merge
   every few centres that happened often enough to matter. */
static void merge_hot_rows(HotRows *hot, float *out, int64_t dim) {
    while (__atomic_test_and_set(hot->lock, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(hot->lock, __ATOMIC_RELAXED)) {}
    for (int64_t r = 0; r < hot->count; r++) {
        float *shared = out + (hot->lo + r) * dim, *mine = hot->rows + r * dim, *base = hot->base + r * dim;
        for (int64_t k = 0; k < dim; k++) {
            float merged = shared[k] + (mine[k] - base[k]);
            shared[k] = merged;
            mine[k] = base[k] = merged;
        }
    }
    __atomic_clear(hot->lock, __ATOMIC_RELEASE);
}

/* Hierarchical softmax for one example: `hidden` against the inner nodes on `word`'s path, each row
   updated at once (as train_example does) at its node's share of lr (tree->node_lr), the input-side
   gradient in `work` at the full lr; the rows written are marked. A node with |score| >= HS_MAX_SCORE is not updated. Returns the loss, sum of -log s((1 - 2 code) score). */
static inline __attribute__((always_inline)) double train_example_hs(
        const float *restrict hidden, float *restrict work, float *out, int64_t dim, const Tree *tree, int64_t word,
        float lr, uint8_t *out_marks, const HotRows *hot) {
    double loss = 0.0;
    const uint8_t *code = tree->codes + word * tree->width;
    const int32_t *point = tree->points + word * tree->width;
    int64_t length = tree->lengths[word], hot_lo = hot->lo;
    float *hot_rows = hot->rows;
    const float *node_lr = tree->node_lr;
    memset(work, 0, sizeof(float) * dim);
    for (int64_t k = 0; k < length; k++) {
        int64_t node = point[k];
        float *row = node >= hot_lo ? hot_rows + (node - hot_lo) * dim : out + node * dim;
        float score = dot(hidden, row, dim);
        loss += code[k] ? softplus(score) : softplus(-score);
        if (score <= -HS_MAX_SCORE || score >= HS_MAX_SCORE) continue;
        float g = (1.0f - (float)code[k] - sigmoid(score)) * lr;
        axpy(work, g, row, dim);
        axpy(row, node_lr ? g * node_lr[node] : g, hidden, dim);
        if (out_marks && !out_marks[point[k]]) out_marks[point[k]] = 1;
    }
    return loss;
}

/* train_example_hs with the common dimensions as constants, so the compiler unrolls the row loops into
   whole vector registers with no remainder loop: about 1.26x fewer CPU-seconds for skip-gram at dim 100
   (measured against the same code with dim a variable, docs/performance.md). */
static double train_path(const float *restrict hidden, float *restrict work, float *out, int64_t dim,
                         const Tree *tree, int64_t word, float lr, uint8_t *out_marks, const HotRows *hot) {
    switch (dim) {
    case 50: return train_example_hs(hidden, work, out, 50, tree, word, lr, out_marks, hot);
    case 100: return train_example_hs(hidden, work, out, 100, tree, word, lr, out_marks, hot);
    case 128: return train_example_hs(hidden, work, out, 128, tree, word, lr, out_marks, hot);
    case 200: return train_example_hs(hidden, work, out, 200, tree, word, lr, out_marks, hot);
    case 300: return train_example_hs(hidden, work, out, 300, tree, word, lr, out_marks, hot);
    default: return train_example_hs(hidden, work, out, dim, tree, word, lr, out_marks, hot);
    }
}

/* Negatives are drawn one example ahead and their rows prefetched, so the cache misses on
   random output rows (the main cost once the vocabulary outgrows the cache) overlap the
   arithmetic of the current example instead of stalling it. */
typedef struct {
    int64_t words[2][1 + MAX_NEGATIVE_AHEAD]; /* [current, next] x (target, negatives...) */
    int next;
} NoiseAhead;

static inline void draw_ahead(NoiseAhead *ahead, const Noise *noise, uint64_t *state, float *out, int64_t dim,
                              int64_t negative) {
    int64_t *words = ahead->words[ahead->next];
    for (int64_t d = 1; d <= negative; d++) {
        words[d] = draw_noise(noise, state);
        prefetch_row(out + words[d] * dim, dim);
    }
}

/* Swap in the prefetched negatives for the example about to run, and start drawing the next. */
static inline int64_t *take_ahead(NoiseAhead *ahead, const Noise *noise, uint64_t *state, float *out, int64_t dim,
                                  int64_t negative, int64_t target) {
    int64_t *words = ahead->words[ahead->next];
    ahead->next ^= 1;
    draw_ahead(ahead, noise, state, out, dim, negative);
    words[0] = target;
    return words;
}

#define BLOCK 1024 /* at most this many centres a thread claims at a time */
#define MIN_BLOCK 64 /* ... and at least this many: a claim is one atomic add, cheap next to 64 centres */

/* Read before writing, so that a row already marked costs no store and threads marking the same
   rows keep sharing the cache line instead of passing it back and forth. */
static inline void mark_row(uint8_t *marks, int64_t row) {
    if (marks && !marks[row]) marks[row] = 1;
}

static inline void mark_rows(uint8_t *marks, const int64_t *rows, int64_t n) {
    if (marks)
        for (int64_t k = 0; k < n; k++) mark_row(marks, rows[k]);
}

typedef struct {
    int cbow;
    float *in, *out;
    int64_t dim, negative, n;        /* n tokens in the chunk: centres and their contexts */
    int64_t centre_lo, centre_hi;    /* only these positions are centres; the rest are context carried
                                        across a chunk cut inside a long line */
    int64_t *next_block; /* shared: the first centre nobody has claimed yet */
    int64_t block;       /* centres claimed at a time */
    const int64_t *ids, *sentence, *window;
    uint8_t *in_marks, *out_marks; /* NULL, or a byte per row set to 1 when the row is written */
    Noise noise;
    const Tree *tree; /* NULL: negative sampling; else hierarchical softmax over this tree */
    int64_t hot_rows; /* hierarchical softmax: inner nodes each thread trains a copy of (HotRows) */
    unsigned char *merge_lock; /* shared: HotRows.lock */
    float lr_from, lr_to;
    uint64_t seed;
    double loss;
    int64_t examples;
    int failed;
} Job;

/* Claim blocks of centres until the chunk is done. Claiming (rather than a fixed split) keeps
   every thread busy when one of them is slowed down by other work on the machine.
   A centre's contexts may lie in another block but never cross a sentence. */
static void *run_job(void *arg) {
    Job *job = (Job *)arg;
    int64_t dim = job->dim, n = job->n, negative = job->negative;
    float *work = malloc(sizeof(float) * dim), *mean = malloc(sizeof(float) * dim);
    /* The tree's inner nodes are rows 0..vocab-2, made in order of weight: the last hot_rows are the most used. */
    HotRows hot = {NULL, NULL, job->noise.size - 1 - job->hot_rows, job->hot_rows, job->merge_lock};
    int hot_ok = copy_hot_rows(&hot, job->out, dim);
    if (!work || !mean || !hot_ok) {
        free(work); free(mean); free(hot.rows); free(hot.base); job->failed = 1; return NULL;
    }
    uint64_t state = job->seed;
    NoiseAhead ahead = {.next = 0};
    draw_ahead(&ahead, &job->noise, &state, job->out, dim, negative);
    double loss = 0.0;
    int64_t examples = 0, merged_at = 0; /* examples trained, and their count at the last merge of the hot rows */
    int64_t centre_hi = job->centre_hi;
    float lr_slope = (job->lr_to - job->lr_from) / (float)(centre_hi - job->centre_lo);
    for (;;) {
    int64_t lo = __atomic_fetch_add(job->next_block, job->block, __ATOMIC_RELAXED);
    if (lo >= centre_hi) break;
    int64_t hi = lo + job->block < centre_hi ? lo + job->block : centre_hi;
    for (int64_t i = lo; i < hi; i++) {
        if (hot.count > 0 && examples - merged_at >= HS_MERGE_EVERY) {
            merge_hot_rows(&hot, job->out, dim);
            merged_at = examples;
        }
        /* linear in the centre's place in the chunk */
        float lr = job->lr_from + lr_slope * (float)(i - job->centre_lo);
        int64_t b = job->window[i], sentence = job->sentence[i];
        int64_t first = i - b < 0 ? 0 : i - b, last = i + b >= n ? n - 1 : i + b;
        /* Text is read in order: fetch the rows the next centre will need. */
        if (i + 1 < n) prefetch_row(job->in + job->ids[i + 1] * dim, dim);
        if (i + b + 1 < n) prefetch_row((job->cbow ? job->in : job->out) + job->ids[i + b + 1] * dim, dim);
        if (!job->cbow) {
            float *hidden = job->in + job->ids[i] * dim;
            for (int64_t j = first; j <= last; j++) {
                if (j == i || job->sentence[j] != sentence) continue;
                if (job->tree) {
                    loss += train_path(hidden, work, job->out, dim, job->tree, job->ids[j], lr, job->out_marks, &hot);
                    axpy(hidden, 1.0f, work, dim);
                    mark_row(job->in_marks, job->ids[i]);
                    examples++;
                    continue;
                }
                int64_t *words = take_ahead(&ahead, &job->noise, &state, job->out, dim, negative, job->ids[j]);
                loss += train_negatives(hidden, work, job->out, dim, words, negative, lr);
                axpy(hidden, 1.0f, work, dim);
                /* every output row train_example may write: the target and the negatives (a
                   negative equal to the target is skipped, but that row is the target's) */
                mark_rows(job->out_marks, words, negative + 1);
                mark_row(job->in_marks, job->ids[i]);
                examples++;
            }
        } else {
            int64_t count = 0;
            memset(mean, 0, sizeof(float) * dim);
            for (int64_t j = first; j <= last; j++) {
                if (j == i || job->sentence[j] != sentence) continue;
                axpy(mean, 1.0f, job->in + job->ids[j] * dim, dim);
                count++;
            }
            if (count == 0) continue;
            float inv = 1.0f / (float)count;
            for (int64_t k = 0; k < dim; k++) mean[k] *= inv;
            if (job->tree) {
                loss += train_path(mean, work, job->out, dim, job->tree, job->ids[i], lr, job->out_marks, &hot);
            } else {
                int64_t *words = take_ahead(&ahead, &job->noise, &state, job->out, dim, negative, job->ids[i]);
                loss += train_negatives(mean, work, job->out, dim, words, negative, lr);
                mark_rows(job->out_marks, words, negative + 1);
            }
            for (int64_t j = first; j <= last; j++) {
                if (j == i || job->sentence[j] != sentence) continue;
                axpy(job->in + job->ids[j] * dim, 1.0f, work, dim);
                mark_row(job->in_marks, job->ids[j]);
            }
            examples++;
        }
    }
    if (hot.count > 0) merge_hot_rows(&hot, job->out, dim);
    }
    free(work); free(mean); free(hot.rows); free(hot.base);
    job->loss = loss;
    job->examples = examples;
    return NULL;
}

#define MAX_THREADS 256

/* Train the centres [centre_lo, centre_hi) of a chunk of n tokens (contexts may lie anywhere in
   [0, n)): lr goes linearly from lr_from (first centre) to lr_to (last centre).
   Writes the summed loss and the example count (pairs, or CBOW windows). in_marks / out_marks:
   NULL, or (vocab,) bytes each, set to 1 on every input / output row written.
   codes, points, lengths, width: NULL (0) for negative sampling, or the Huffman tree (vocab rows of
   `width`) for hierarchical softmax, with node_lr (vocab-1 floats, or NULL) scaling each inner node's row update;
   then the noise table only gives the vocabulary's size. Returns 0 on success. */
int w2v_train_chunk(int cbow, float *in, float *out, int64_t dim, const int64_t *ids, const int64_t *sentence,
                    const int64_t *window, int64_t n, int64_t centre_lo, int64_t centre_hi, int64_t negative,
                    const uint32_t *threshold,
                    const int32_t *alias, int64_t vocab, float lr_from, float lr_to, uint64_t seed, int threads,
                    uint8_t *in_marks, uint8_t *out_marks, const uint8_t *codes, const int32_t *points,
                    const int32_t *lengths, int64_t width, const float *node_lr, double *loss_out,
                    int64_t *examples_out) {
    Tree tree = {codes, points, lengths, width, node_lr};
    if (negative > MAX_NEGATIVE_AHEAD) return -2; /* the caller uses the torch path instead */
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (centre_lo < 0 || centre_hi > n || centre_lo > centre_hi) return -3;
    /* Every id indexes a row of both tables (vocab rows, the noise table's length): checked once a chunk,
       so a damaged id stream is an error, not a write outside the tables. One pass over n ids is noise
       next to training them. */
    for (int64_t i = 0; i < n; i++) if (ids[i] < 0 || ids[i] >= vocab) return -4;
    /* Blocks small enough that every thread gets about 8 of them: the threads then finish within a
       small block of each other. train.log_every=auto keeps chunks to half a logging interval (5,000
       tokens, about 3,000 centres after subsampling, on the sample): with fixed 1,024-centre blocks
       such a chunk split 2 blocks to 1 and one thread sat idle a third of the time. */
    int64_t centres = centre_hi - centre_lo, block = centres / ((int64_t)threads * 8);
    block = block < MIN_BLOCK ? MIN_BLOCK : block > BLOCK ? BLOCK : block;
    if (centres < 2 * block * threads) threads = centres < 2 * block ? 1 : (int)(centres / (2 * block));
    int64_t next_block = centre_lo;
    unsigned char merge_lock = 0;
    int64_t hot_rows = codes && threads > 1 ? (vocab - 1 < HS_HOT_ROWS ? vocab - 1 : HS_HOT_ROWS) : 0;
    Job jobs[MAX_THREADS];
    pthread_t handles[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 0; t < threads; t++) {
        Job job = {cbow, in, out, dim, negative, n, centre_lo, centre_hi, &next_block, block, ids, sentence, window,
                   in_marks, out_marks, {threshold, alias, vocab}, codes ? &tree : NULL, hot_rows, &merge_lock,
                   lr_from, lr_to, seed + 0x632BE59BD9B4E019ull * (uint64_t)(t + 1), 0.0, 0, 0};
        jobs[t] = job;
    }
    for (int t = 1; t < threads; t++) started[t] = pthread_create(&handles[t], NULL, run_job, &jobs[t]) == 0;
    run_job(&jobs[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(handles[t], NULL);
        else run_job(&jobs[t]); /* could not start: nothing left to claim by now, so this returns at once */
    }
    double loss = 0.0;
    int64_t examples = 0;
    int failed = 0;
    for (int t = 0; t < threads; t++) { loss += jobs[t].loss; examples += jobs[t].examples; failed |= jobs[t].failed; }
    *loss_out = loss;
    *examples_out = examples;
    return failed ? -1 : 0;
}

/* Given examples, applied one after another (single thread): the reference path for tests.
   skip-gram: centres (n,) input words, contexts (n,) targets.
   CBOW: contexts (n, width) input words with mask (n, width), centres (n,) targets.
   negatives (n, negative); or, with codes != NULL, hierarchical softmax over the Huffman tree
   (codes, points, lengths, tree_width, node_lr) and no negatives. Returns the summed loss. */
double w2v_train_examples(int cbow, float *in, float *out, int64_t dim, const int64_t *centres,
                          const int64_t *contexts, const uint8_t *mask, int64_t width, const int64_t *negatives,
                          int64_t n, int64_t negative, float lr, const uint8_t *codes, const int32_t *points,
                          const int32_t *lengths, int64_t tree_width, const float *node_lr) {
    Tree tree = {codes, points, lengths, tree_width, node_lr};
    float *work = malloc(sizeof(float) * dim), *mean = malloc(sizeof(float) * dim);
    int64_t *words = malloc(sizeof(int64_t) * (negative + 1));
    double loss = 0.0;
    if (!work || !mean || !words) { free(work); free(mean); free(words); return NAN; }
    for (int64_t e = 0; e < n; e++) {
        memcpy(words + 1, negatives + e * negative, sizeof(int64_t) * negative);
        words[0] = cbow ? centres[e] : contexts[e];
        if (!cbow) {
            float *hidden = in + centres[e] * dim;
            loss += codes ? train_path(hidden, work, out, dim, &tree, words[0], lr, NULL, &NO_HOT_ROWS)
                          : train_example(hidden, work, out, dim, words, negative, lr);
            axpy(hidden, 1.0f, work, dim);
            continue;
        }
        int64_t count = 0;
        memset(mean, 0, sizeof(float) * dim);
        for (int64_t c = 0; c < width; c++)
            if (mask[e * width + c]) { axpy(mean, 1.0f, in + contexts[e * width + c] * dim, dim); count++; }
        if (count == 0) continue;
        for (int64_t k = 0; k < dim; k++) mean[k] /= (float)count;
        loss += codes ? train_path(mean, work, out, dim, &tree, words[0], lr, NULL, &NO_HOT_ROWS)
                      : train_example(mean, work, out, dim, words, negative, lr);
        for (int64_t c = 0; c < width; c++)
            if (mask[e * width + c]) axpy(in + contexts[e * width + c] * dim, 1.0f, work, dim);
    }
    free(work); free(mean); free(words);
    return loss;
}

/* The rows of a (vocab, dim) table that differ from base in any element (a != b, as torch's ne), in
   increasing order, into rows_out; returns how many. marks: NULL to compare every row, or (vocab,)
   bytes: only rows marked nonzero are compared (an unmarked row must equal base), and the marks are
   cleared. One pass over the marks and the marked rows, instead of torch's (vocab, dim) bool mask
   and its slow row reduction. */
int64_t w2v_changed_rows(const float *table, const float *base, int64_t vocab, int64_t dim, uint8_t *marks,
                         int64_t *rows_out) {
    int64_t n = 0;
    for (int64_t r = 0; r < vocab; r++) {
        if (marks) {
            if (!marks[r]) continue;
            marks[r] = 0;
        }
        const float *a = table + r * dim, *b = base + r * dim;
        int differs = 0;
        for (int64_t k = 0; k < dim; k++) differs |= a[k] != b[k];
        if (differs) rows_out[n++] = r;
    }
    return n;
}

/* n draws from the alias table (tests check the distribution against unigram^0.75). */
void w2v_draw_noise(const uint32_t *threshold, const int32_t *alias, int64_t vocab, uint64_t seed, int64_t n,
                    int64_t *draws) {
    Noise noise = {threshold, alias, vocab};
    uint64_t state = seed;
    for (int64_t i = 0; i < n; i++) draws[i] = draw_noise(&noise, &state);
}
