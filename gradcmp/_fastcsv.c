/* The strict CSV reader's fast path (gradcmp/data.py holds the rules and the messages).

   parse() reads data rows of a CSV file whose header the caller has read (see its comment
   below). Each cell must be a plain decimal (optional sign, digits with an optional point,
   optional exponent; spaces and tabs around it); blank lines are skipped; a row has exactly
   `ncols` cells. Values go column by column into `out`, a writable float64 buffer of
   ncols × cap (column c at out[c·cap + row]), so every column comes out contiguous.

   Every value is correctly rounded to float64:
   - a significand w < 2^53 with a power of ten 10^|q| ≤ 10^22 is one exact double times or
     divided by another, one correctly rounded operation (Clinger's fast path);
   - otherwise, for w < 2^63 and |q| ≤ 27, the same operation in x87 extended precision (64
     bits) rounds once, and rounding that to double is correct unless the extended result is
     exactly halfway between two doubles (the only case where rounding twice can differ from
     rounding once); those cells, like every cell with more than 19 significant digits or a
     larger exponent, are handed back to Python ("hard" cells: float() and Fraction there).
   A cell is exact when w·10^q is a double: its odd part must fit in 53 bits. Inexact cells
   are listed (cell index = row·ncols + column, w with its sign, q) so the exact reference
   can use the decimals as written. Anything outside the grammar (a carriage return or a
   non-ASCII byte included) stops the reader at that line: the caller finds and words it. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The extended path needs x87's 80-bit format, whose 64-bit significand (explicit leading
   bit) is the first 8 bytes of a long double: the halfway test reads its low 11 bits. */
#if defined(__SIZEOF_INT128__) && LDBL_MANT_DIG == 64 && (defined(__x86_64__) || defined(__i386__))
#define HAVE_EXTENDED 1
#else
#define HAVE_EXTENDED 0
#endif

#define MAX_DIGITS 19
#define TWO53 9007199254740992ULL

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
static uint64_t POW5[28];
#if HAVE_EXTENDED
static long double POW10L[28];
#endif

typedef struct {
    int64_t *index, *significand;
    int16_t *exponent;
    Py_ssize_t n, cap;
} Inexact;

static int push_inexact(Inexact *t, int64_t index, int64_t significand, int exponent) {
    if (t->n == t->cap) {
        Py_ssize_t cap = t->cap ? 2 * t->cap : 1024;
        int64_t *i = realloc(t->index, cap * sizeof(int64_t));
        if (i) t->index = i;
        int64_t *s = realloc(t->significand, cap * sizeof(int64_t));
        if (s) t->significand = s;
        int16_t *e = realloc(t->exponent, cap * sizeof(int16_t));
        if (e) t->exponent = e;
        if (!i || !s || !e) return -1;
        t->cap = cap;
    }
    t->index[t->n] = index;
    t->significand[t->n] = significand;
    t->exponent[t->n] = (int16_t)exponent;
    t->n++;
    return 0;
}

static void free_inexact(Inexact *t) {
    free(t->index);
    free(t->significand);
    free(t->exponent);
}

/* Whether w·10^q (w > 0, |q| ≤ 27) is a double: its odd part has at most 53 bits. */
static int is_exact(uint64_t w, int q) {
    if (q < 0) {
        if (w % 5) return 0; /* the usual case, cheap: a division by a constant */
        uint64_t p = POW5[-q];
        if (w % p) return 0;
        w /= p;
        return (w >> __builtin_ctzll(w)) < TWO53;
    }
    unsigned __int128 odd = (unsigned __int128)(w >> __builtin_ctzll(w)) * POW5[q];
    return odd < TWO53;
}

enum { CELL_OK = 0, CELL_BAD = 1, CELL_HARD = 2 };

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* Eight ASCII digits at once (SWAR, as in fast_float): whether they are all digits, and
   their value. */
static inline int eight_digits(const char *p, uint64_t *chunk) {
    uint64_t v;
    memcpy(&v, p, 8);
    *chunk = v;
    return ((v & 0xF0F0F0F0F0F0F0F0ULL) |
            (((v + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4)) ==
           0x3333333333333333ULL;
}

static inline uint32_t eight_digits_value(uint64_t v) {
    v = ((v & 0x0F0F0F0F0F0F0F0FULL) * 2561) >> 8;
    v = ((v & 0x00FF00FF00FF00FFULL) * 6553601) >> 16;
    return (uint32_t)(((v & 0x0000FFFF0000FFFFULL) * 42949672960001ULL) >> 32);
}
#define HAVE_SWAR 1
#else
#define HAVE_SWAR 0
#endif

/* One cell, blanks already trimmed: p..end. */
static int parse_cell(const char *p, const char *end, double *value, int *exact,
                      int64_t *signed_w, int *q_out) {
    int negative = 0;
    if (p < end && (*p == '+' || *p == '-')) negative = *p++ == '-';
    uint64_t w = 0;
    int digits = 0, seen = 0, q = 0, hard = 0;
    while (p < end && (unsigned)(*p - '0') < 10) {
        int d = *p++ - '0';
        seen = 1;
        if (digits < MAX_DIGITS) {
            if (w || d) {
                w = w * 10 + d;
                digits++;
            }
        } else {
            q++; /* a digit past the 19th: zeros scale, anything else needs Python */
            if (d) hard = 1;
        }
    }
    if (p < end && *p == '.') {
        p++;
#if HAVE_SWAR
        /* Past the first significant digit, eight at a time while they fit in 19. */
        if (w == 0)
            while (p < end && *p == '0') p++, q--, seen = 1;
        if (p < end && (unsigned)(*p - '0') < 10 && digits < MAX_DIGITS) {
            w = w * 10 + (*p++ - '0');
            digits += w != 0;
            q--;
            seen = 1;
        }
        uint64_t chunk;
        while (w && digits + 8 <= MAX_DIGITS && end - p >= 8 && eight_digits(p, &chunk)) {
            w = w * 100000000ULL + eight_digits_value(chunk);
            digits += 8;
            q -= 8;
            p += 8;
        }
#endif
        while (p < end && (unsigned)(*p - '0') < 10) {
            int d = *p++ - '0';
            seen = 1;
            if (digits < MAX_DIGITS) {
                if (w || d) {
                    w = w * 10 + d;
                    digits++;
                }
                q--;
            } else if (d) {
                hard = 1;
            }
        }
    }
    if (!seen) return CELL_BAD;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int exponent_negative = 0;
        if (p < end && (*p == '+' || *p == '-')) exponent_negative = *p++ == '-';
        if (!(p < end && (unsigned)(*p - '0') < 10)) return CELL_BAD;
        long exponent = 0;
        while (p < end && (unsigned)(*p - '0') < 10) {
            if (exponent < 100000) exponent = exponent * 10 + (*p - '0');
            p++;
        }
        q += (int)(exponent_negative ? -exponent : exponent);
    }
    if (p != end) return CELL_BAD;
    if (hard) return CELL_HARD;
    if (w == 0) {
        *value = negative ? -0.0 : 0.0;
        *exact = 1;
        return CELL_OK;
    }
    double v;
    if (w < TWO53 && q >= -22 && q <= 22) {
        v = q < 0 ? (double)w / POW10[-q] : (double)w * POW10[q];
    }
#if HAVE_EXTENDED
    else if (q >= -27 && q <= 27 && w <= (uint64_t)INT64_MAX) {
        long double r = q < 0 ? (long double)w / POW10L[-q] : (long double)w * POW10L[q];
        uint64_t bits;
        memcpy(&bits, &r, sizeof bits); /* the significand, leading bit included */
        if ((bits & 0x7FF) == 0x400) return CELL_HARD; /* halfway between two doubles */
        v = (double)r;
    }
#endif
    else {
        return CELL_HARD;
    }
    *value = negative ? -v : v;
    *exact = is_exact(w, q);
    *signed_w = negative ? -(int64_t)w : (int64_t)w;
    *q_out = q;
    return CELL_OK;
}

typedef struct {
    int64_t index, line;
    Py_ssize_t offset, length;
} Hard;

typedef struct {
    Hard *items;
    Py_ssize_t n, cap;
} HardList;

static int push_hard(HardList *t, int64_t index, int64_t line, Py_ssize_t offset,
                     Py_ssize_t length) {
    if (t->n == t->cap) {
        Py_ssize_t cap = t->cap ? 2 * t->cap : 64;
        Hard *items = realloc(t->items, cap * sizeof(Hard));
        if (!items) return -1;
        t->items = items;
        t->cap = cap;
    }
    t->items[t->n++] = (Hard){index, line, offset, length};
    return 0;
}

enum { DONE = 0, PROBLEM = 1, FULL = 2, NO_MEMORY = 3 };

/* The loop, without the GIL: rows of text[start, stop) into values (column c at
   values[c·cap + row]). Sets *next to where it stopped and *line to that line's number. */
static int parse_rows(const char *text, Py_ssize_t start, Py_ssize_t stop_at, Py_ssize_t ncols,
                      double *values, Py_ssize_t cap, Py_ssize_t *rows_out, Py_ssize_t *next,
                      Py_ssize_t *line, Inexact *inexact, HardList *hard) {
    /* rows counts from *rows_out on (the rows an earlier call put into `values`) */
    const char *p = text + start, *stop = text + stop_at;
    Py_ssize_t rows = *rows_out, line_no = *line;
    int status = DONE;
    for (; p < stop; line_no++) {
        const char *line_start = p;
        const char *newline = memchr(p, '\n', stop - p);
        const char *end = newline ? newline : stop;
        if (end > line_start && end[-1] == '\r') end--;
        const char *a = line_start;
        while (a < end && (*a == ' ' || *a == '\t')) a++;
        if (a == end) { /* a blank line */
            p = newline ? newline + 1 : stop;
            continue;
        }
        if (rows == cap) {
            status = FULL;
            break;
        }
        Py_ssize_t column = 0;
        const char *cell = line_start;
        while (1) {
            const char *comma = memchr(cell, ',', end - cell);
            const char *cell_end = comma ? comma : end;
            if (column == ncols) {
                status = PROBLEM;
                break;
            }
            const char *b = cell, *e = cell_end;
            while (b < e && (*b == ' ' || *b == '\t')) b++;
            while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
            double v = 0;
            int exact = 0, q = 0;
            int64_t w = 0;
            int kind = b < e ? parse_cell(b, e, &v, &exact, &w, &q) : CELL_BAD;
            int64_t index = (int64_t)rows * ncols + column;
            if (kind == CELL_BAD) {
                status = PROBLEM;
                break;
            }
            if (kind == CELL_HARD) {
                if (push_hard(hard, index, line_no, b - text, e - b) < 0) return NO_MEMORY;
                v = 0;
            } else if (!exact && push_inexact(inexact, index, w, q) < 0) {
                return NO_MEMORY;
            }
            values[column * cap + rows] = v;
            column++;
            if (!comma) break;
            cell = comma + 1;
        }
        if (!status && column != ncols) status = PROBLEM;
        if (status) break;
        rows++;
        p = newline ? newline + 1 : stop;
    }
    *rows_out = rows;
    *next = p - text;
    *line = line_no;
    return status;
}

/* parse(data, start, stop, line, ncols, out, rows) → (status, rows, next, line, hard,
   inexact index, significand, exponent bytes): rows of data[start, stop), the first on line
   `line`, into `out` (ncols × cap float64) from row `rows` on; the rows and cell indices it
   returns count from 0 (the rows already there included). status DONE: all read, `line` is
   the number of the line after them; PROBLEM: the first problem is on `line`; FULL: `out`
   is full, go on from `next` (line `line`) with more room. Releases the GIL while it reads:
   the caller may read parts of one file in threads. */
static PyObject *parse(PyObject *self, PyObject *args) {
    Py_buffer data, out;
    Py_ssize_t start, stop, line, ncols, rows;
    if (!PyArg_ParseTuple(args, "y*nnnnw*n", &data, &start, &stop, &line, &ncols, &out, &rows))
        return NULL;
    Py_ssize_t cap = out.len / (Py_ssize_t)sizeof(double) / (ncols > 0 ? ncols : 1);
    if (ncols < 1 || start < 0 || stop > data.len || start > stop || rows < 0 || rows > cap) {
        PyErr_SetString(PyExc_ValueError, "bad range or column count");
        PyBuffer_Release(&data);
        PyBuffer_Release(&out);
        return NULL;
    }
    Py_ssize_t next = start;
    Inexact inexact = {0};
    HardList hard = {0};
    int status;
    Py_BEGIN_ALLOW_THREADS;
    status = parse_rows((const char *)data.buf, start, stop, ncols, (double *)out.buf, cap,
                        &rows, &next, &line, &inexact, &hard);
    Py_END_ALLOW_THREADS;
    PyObject *result = NULL, *hard_list = NULL;
    if (status == NO_MEMORY) {
        PyErr_NoMemory();
        goto done;
    }
    hard_list = PyList_New(hard.n);
    if (!hard_list) goto done;
    for (Py_ssize_t i = 0; i < hard.n; i++) {
        Hard h = hard.items[i];
        PyObject *item = Py_BuildValue("(LLy#)", (long long)h.index, (long long)h.line,
                                       (const char *)data.buf + h.offset, h.length);
        if (!item) goto done;
        PyList_SET_ITEM(hard_list, i, item);
    }
    /* (y# of a NULL pointer would be None, not empty bytes) */
    static const char empty[1] = "";
    result = Py_BuildValue(
        "(innnOy#y#y#)", status, rows, next, line, hard_list,
        inexact.n ? (const char *)inexact.index : empty, inexact.n * (Py_ssize_t)sizeof(int64_t),
        inexact.n ? (const char *)inexact.significand : empty,
        inexact.n * (Py_ssize_t)sizeof(int64_t), inexact.n ? (const char *)inexact.exponent : empty,
        inexact.n * (Py_ssize_t)sizeof(int16_t));
done:
    Py_XDECREF(hard_list);
    free(hard.items);
    free_inexact(&inexact);
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"parse", parse, METH_VARARGS, "Parse CSV data rows (see gradcmp/_fastcsv.c)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastcsv",
                                    "The strict CSV reader's fast path.", -1, methods};

PyMODINIT_FUNC PyInit__fastcsv(void) {
    POW5[0] = 1;
    for (int i = 1; i < 28; i++) POW5[i] = POW5[i - 1] * 5;
#if HAVE_EXTENDED
    POW10L[0] = 1;
    for (int i = 1; i < 28; i++) POW10L[i] = POW10L[i - 1] * 10;
#endif
    return PyModule_Create(&module);
}
