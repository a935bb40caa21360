/* The strict CSV reader's fast path (gradcmp/loading/csvfile.py holds the rules and the messages).

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
   keep their decimal (w with its sign, q) in arrays beside the values, so the exact
   reference can use the decimals as written. Anything outside the grammar (a carriage return or a
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
#define EXPONENT_BIAS 64
#define TWO53 9007199254740992ULL

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
static uint64_t POW5[28];
#if HAVE_EXTENDED
static long double POW10L[28];
#endif

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

static const uint64_t POW10U[9] = {1,      10,      100,      1000,     10000,
                                   100000, 1000000, 10000000, 100000000};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The value of eight ASCII digits, the first in the lowest byte (SWAR, as in fast_float). */
static inline uint32_t eight_digits_value(uint64_t v) {
    v = ((v & 0x0F0F0F0F0F0F0F0FULL) * 2561) >> 8;
    v = ((v & 0x00FF00FF00FF00FFULL) * 6553601) >> 16;
    return (uint32_t)(((v & 0x0000FFFF0000FFFFULL) * 42949672960001ULL) >> 32);
}
#define HAVE_SWAR 1
#else
#define HAVE_SWAR 0
#endif

/* The digits from *pp on into the significand w (at most 19 significant digits; zeros before
   the first significant one are skipped). In the integer part a digit past the 19th scales
   by 10 (q + 1); in the fractional part each digit up to the 19th divides by 10 (q − 1). A
   nonzero digit past the 19th cannot be kept: *hard. Returns whether there was a digit. */
static inline int take_digits(const char **pp, const char *stop, uint64_t *w, int *digits,
                              int *q, int *hard, int fractional) {
    const char *p = *pp;
    int seen = 0;
    while (*w == 0 && p < stop && *p == '0') {
        p++;
        seen = 1;
        if (fractional) (*q)--;
    }
#if HAVE_SWAR
    /* Up to eight digits a step: find where the digits end in the next 8 bytes (the high bit
       of each non-digit byte; a carry only ever marks bytes after the first non-digit), and
       read the k digits as the last k of eight, the first 8 − k made '0'. */
    while (stop - p >= 8 && *digits < MAX_DIGITS) {
        uint64_t v, x, nondigit;
        memcpy(&v, p, 8);
        x = v ^ 0x3030303030303030ULL;
        nondigit = (x | (x + 0x7676767676767676ULL)) & 0x8080808080808080ULL;
        int k = nondigit ? __builtin_ctzll(nondigit) >> 3 : 8;
        if (k == 0) break;
        if (*digits + k > MAX_DIGITS) k = MAX_DIGITS - *digits;
        uint64_t shifted = k == 8 ? v : (v << (8 * (8 - k))) | (0x3030303030303030ULL >> (8 * k));
        *w = *w * POW10U[k] + eight_digits_value(shifted);
        *digits += k;
        if (fractional) *q -= k;
        p += k;
        seen = 1;
        if (k < 8) break;
    }
#endif
    while (p < stop && (unsigned)(*p - '0') < 10) {
        int d = *p++ - '0';
        seen = 1;
        if (*digits < MAX_DIGITS) {
            if (*w || d) {
                *w = *w * 10 + d;
                (*digits)++;
            }
            if (fractional) (*q)--;
        } else {
            if (!fractional) (*q)++;
            if (d) *hard = 1;
        }
    }
    *pp = p;
    return seen;
}

/* One number from p on (blanks skipped already); *after is where it ends. */
static int parse_number(const char *p, const char *stop, const char **after, double *value,
                        int *exact, int64_t *signed_w, int *q_out) {
    int negative = 0;
    if (p < stop && (*p == '+' || *p == '-')) negative = *p++ == '-';
    uint64_t w = 0;
    int digits = 0, q = 0, hard = 0;
    int seen = take_digits(&p, stop, &w, &digits, &q, &hard, 0);
    if (p < stop && *p == '.') {
        p++;
        seen |= take_digits(&p, stop, &w, &digits, &q, &hard, 1);
    }
    if (!seen) return CELL_BAD;
    if (p < stop && (*p == 'e' || *p == 'E')) {
        p++;
        int exponent_negative = 0;
        if (p < stop && (*p == '+' || *p == '-')) exponent_negative = *p++ == '-';
        if (!(p < stop && (unsigned)(*p - '0') < 10)) return CELL_BAD;
        long exponent = 0;
        while (p < stop && (unsigned)(*p - '0') < 10) {
            if (exponent < 100000) {
                exponent = exponent * 10 + (*p - '0');
            } else {
                hard = 1; /* an exponent this long: Python decides (it is not cut short) */
            }
            p++;
        }
        q += (int)(exponent_negative ? -exponent : exponent);
    }
    *after = p;
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
                      Py_ssize_t stride, double *values, int64_t *significands,
                      int8_t *exponents, Py_ssize_t row0, Py_ssize_t row_limit,
                      Py_ssize_t *rows_out, Py_ssize_t *inexact_out, Py_ssize_t *next,
                      Py_ssize_t *line, HardList *hard) {
    /* rows row0 + 0, 1, … < row_limit of columns `stride` apart */
    const char *p = text + start, *stop = text + stop_at;
    Py_ssize_t rows = 0, line_no = *line, inexact = 0;
    int status = DONE;
#define BLANK(c) ((c) == ' ' || (c) == '\t')
/* A line end at c: LF, or CR LF, or CR at the end of the data (as the Python reader splits). */
#define LINE_END(c) ((c) == stop || *(c) == '\n' || (*(c) == '\r' && ((c) + 1 == stop || (c)[1] == '\n')))
#define AFTER_LINE_END(c) ((c) == stop ? stop : *(c) == '\n' ? (c) + 1 : (c) + 1 == stop ? stop : (c) + 2)
    for (; p < stop; line_no++) {
        const char *c = p;
        while (c < stop && BLANK(*c)) c++;
        if (LINE_END(c)) { /* a blank line */
            p = AFTER_LINE_END(c);
            continue;
        }
        if (row0 + rows == row_limit) {
            status = FULL;
            break;
        }
        Py_ssize_t column = 0;
        while (1) { /* c: the start of a cell, blanks skipped */
            const char *after = c;
            double v = 0;
            int exact = 0, q = 0;
            int64_t w = 0;
            int kind = column < ncols ? parse_number(c, stop, &after, &v, &exact, &w, &q)
                                      : CELL_BAD;
            if (kind == CELL_BAD) {
                status = PROBLEM;
                break;
            }
            Py_ssize_t at = column * stride + row0 + rows;
            if (kind == CELL_HARD) {
                int64_t index = (int64_t)rows * ncols + column;
                if (push_hard(hard, index, line_no, c - text, after - c) < 0) return NO_MEMORY;
                v = 0;
            } else if (!exact) { /* the decimal as written; exponents hold q + 64, 0 = none */
                significands[at] = w;
                exponents[at] = (int8_t)(q + EXPONENT_BIAS);
                inexact++;
            }
            values[at] = v;
            column++;
            while (after < stop && BLANK(*after)) after++;
            if (LINE_END(after)) {
                p = AFTER_LINE_END(after);
                break;
            }
            if (*after != ',') { /* something after the number that is not a separator */
                status = PROBLEM;
                break;
            }
            c = after + 1;
            while (c < stop && BLANK(*c)) c++;
        }
        if (!status && column != ncols) status = PROBLEM;
        if (status) break;
        rows++;
    }
#undef BLANK
#undef LINE_END
#undef AFTER_LINE_END
    *rows_out = rows;
    *inexact_out = inexact;
    *next = p - text;
    *line = line_no;
    return status;
}

/* parse(data, start, stop, line, ncols, values, significands, exponents, row0, row_limit)
   → (status, rows, inexact, next, line, hard): rows of data[start, stop), the first on line
   `line`, into rows row0, row0 + 1, … (< row_limit) of `values` (float64, ncols × stride,
   C order: column c's row r at c·stride + r). An inexact cell also gets its decimal, w into
   `significands` (int64, same shape) and q + 64 into `exponents` (int8, same shape; the
   caller zeroes it: 0 = no decimal there). `rows` and `inexact` count this call's rows and
   inexact cells; the hard cells' indices are (row − row0) · ncols + column. status DONE: all
   read, `line` is the number of the line after them; PROBLEM: the first problem is on
   `line`; FULL: row_limit reached, the rest starts at `next` (line `line`). Releases the
   GIL while it reads: the caller may read parts of one file in threads. */
static PyObject *parse(PyObject *self, PyObject *args) {
    Py_buffer data, values, significands, exponents;
    Py_ssize_t start, stop, line, ncols, row0, row_limit;
    if (!PyArg_ParseTuple(args, "y*nnnnw*w*w*nn", &data, &start, &stop, &line, &ncols, &values,
                          &significands, &exponents, &row0, &row_limit))
        return NULL;
    PyObject *result = NULL, *hard_list = NULL;
    HardList hard = {0};
    Py_ssize_t stride = values.len / (Py_ssize_t)sizeof(double) / (ncols > 0 ? ncols : 1);
    if (ncols < 1 || start < 0 || stop > data.len || start > stop || row0 < 0 ||
        row_limit > stride || row0 > row_limit ||
        significands.len != stride * ncols * (Py_ssize_t)sizeof(int64_t) ||
        exponents.len != stride * ncols) {
        PyErr_SetString(PyExc_ValueError, "bad range, rows or buffer sizes");
        goto done;
    }
    Py_ssize_t rows = 0, inexact = 0, next = start;
    int status;
    Py_BEGIN_ALLOW_THREADS;
    status = parse_rows((const char *)data.buf, start, stop, ncols, stride, (double *)values.buf,
                        (int64_t *)significands.buf, (int8_t *)exponents.buf, row0, row_limit,
                        &rows, &inexact, &next, &line, &hard);
    Py_END_ALLOW_THREADS;
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
    result = Py_BuildValue("(innnnO)", status, rows, inexact, next, line, hard_list);
done:
    Py_XDECREF(hard_list);
    free(hard.items);
    PyBuffer_Release(&data);
    PyBuffer_Release(&values);
    PyBuffer_Release(&significands);
    PyBuffer_Release(&exponents);
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
