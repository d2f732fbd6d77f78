/*
 * payload.c - message bodies: compiled templates and replayed datasets.
 *
 * Every message a publisher sends needs a body, and building it must not
 * distort the latency being measured: at tens of thousands of messages per
 * second, re-parsing a template, calling malloc or going through printf for
 * each message would cost more than the broker hop we are timing.  So the
 * template (or every line of a dataset) is parsed once into a flat list of
 * parts, each either a literal span of the source text or a placeholder with
 * its arguments already validated and converted; rendering just walks that
 * list and copies bytes.  The same compile step gives a cheap upper bound on
 * the rendered size, so callers can size their buffers once.  Dataset files
 * (NDJSON or CSV) are turned into one JSON object text per record and then
 * compiled exactly like templates, which keeps a single render path.
 */
#include "payload.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_LIMIT ((size_t)64 << 20)   /* largest payload file we read */
#define TEXT_LIMIT ((size_t)256 << 20)  /* largest JSON a CSV may expand to */
#define NOW_WIDTH 32 /* "-292277-..." worst case is 30 bytes, rounded up */

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

enum { P_LIT, P_DEV, P_DEV1, P_SEQ, P_RAND, P_RANDF, P_CHOICE, P_HEX, P_NOW };

/* A growable byte array.  Parts, words and lines are stored in these too;
 * realloc returns memory aligned for any type, so the casts are safe. */
typedef struct { char *d; size_t n, cap; } buf;

typedef struct {
    int kind;
    size_t off, len; /* literal: span of text; choice: first word, count;
                        hex: digit count */
    int64_t lo;      /* rand: A; randf: smallest value in thousandths */
    uint64_t span;   /* random draws are uniform in [0, span] */
    uint64_t thr;    /* draws below thr are rejected to remove modulo bias */
} part;

typedef struct { size_t off, len; } span;      /* a choice word, a field */
typedef struct { size_t first, n, max; } line; /* one compiled template */
typedef struct { size_t off, len, lno; } row;  /* a CSV record's object */

struct il_payload {
    char *text;         /* owned source bytes that literal parts point into */
    buf parts, words, lines;
    size_t nlines, max_len;
    uint64_t rng;
    int is_object;
};

static const char accepted[] = "accepted: device, device1, seq, rand:A:B, "
                               "randf:A:B, choice:a|b, hex:N, now";

/* Every error is one sentence prefixed by where it happened ("template",
 * a path, or path:line), so the user can find the offending text. */
PRINTF_LIKE(6, 7)
static int fail(char *eb, size_t el, int rc, const char *where, size_t lno,
                const char *fmt, ...)
{
    if (!eb || !el)
        return rc;
    int k = 0;
    if (where)
        k = lno ? snprintf(eb, el, "%s:%zu: ", where, lno)
                : snprintf(eb, el, "%s: ", where);
    if (k >= 0 && (size_t)k < el) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(eb + k, el - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int buf_put(buf *b, const void *s, size_t n)
{
    if (b->cap - b->n < n || !b->d) { /* never leave d NULL: no NULL + 0 */
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n)
            cap *= 2;
        char *d = realloc(b->d, cap);
        if (!d)
            return -1;
        b->d = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->d + b->n, s, n);
    b->n += n;
    return 0;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* ---- random numbers ---------------------------------------------------- */

/* xorshift64*: tiny state, no allocation, good enough statistics for test
 * data, and reproducible from a single seed. */
static uint64_t next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void set_span(part *pt, uint64_t span)
{
    /* Rejecting draws that fall in the short last stripe makes the mapping
     * exactly uniform.  Spans that fit 32 bits use Lemire's multiply-shift
     * (no division per draw); wider ones reject raw values below
     * 2^64 mod (span + 1) and then take the remainder. */
    uint64_t n = span + 1;
    pt->span = span;
    pt->thr = span <= UINT32_MAX ? ((1ULL << 32) - n) % n : n ? (0 - n) % n : 0;
}

static uint64_t draw(uint64_t *s, const part *pt)
{
    uint64_t n = pt->span + 1, r;
    if (pt->span <= UINT32_MAX) {
        do
            r = (next(s) >> 32) * n;
        while ((uint32_t)r < pt->thr);
        return r >> 32;
    }
    if (n == 0)
        return next(s);
    do
        r = next(s);
    while (r < pt->thr);
    return r % n;
}

/* ---- number and time formatting ---------------------------------------- */

/* Formatters write backwards, ending at `end`, and return the first byte;
 * this avoids reversing digits and never needs snprintf.  Two digits per
 * division halve the dependent multiply chain. */
#define TEN(x) #x "0" #x "1" #x "2" #x "3" #x "4" #x "5" #x "6" #x "7" #x "8" #x "9"
static const char pairs[] = TEN(0) TEN(1) TEN(2) TEN(3) TEN(4) TEN(5) TEN(6) TEN(7) TEN(8) TEN(9);

static char *put_u64(char *end, uint64_t v)
{
    for (; v >= 100; v /= 100)
        end -= 2, memcpy(end, pairs + v % 100 * 2, 2);
    if (v >= 10)
        return memcpy(end - 2, pairs + v * 2, 2);
    *--end = (char)('0' + v);
    return end;
}

/* u is a two's complement int64 held in a uint64, so sums like A + r can be
 * formed without signed overflow. */
static char *put_signed(char *end, uint64_t u)
{
    int neg = (int)(u >> 63);
    char *s = put_u64(end, neg ? 0 - u : u);
    if (neg)
        *--s = '-';
    return s;
}

/* A value in thousandths, printed with exactly three decimals. */
static char *put_milli(char *end, uint64_t u)
{
    int neg = (int)(u >> 63);
    uint64_t m = neg ? 0 - u : u;
    for (int i = 0; i < 3; i++, m /= 10)
        *--end = (char)('0' + m % 10);
    *--end = '.';
    char *s = put_u64(end, m);
    if (neg)
        *--s = '-';
    return s;
}

static size_t width_of(char *(*fmt)(char *, uint64_t), int64_t v)
{
    char t[32];
    return (size_t)(t + sizeof t - fmt(t + sizeof t, (uint64_t)v));
}

static char *two(char *o, int64_t v, char sep)
{
    o[0] = (char)('0' + v / 10);
    o[1] = (char)('0' + v % 10);
    o[2] = sep;
    return o + 3;
}

/* Day-of-year at which each month starts, in a year that begins on March 1
 * so that the leap day, when there is one, is the year's last day. */
static const short mstart[12] = {0, 31, 61, 92, 122, 153, 184, 214, 245, 275, 306, 337};

/* ISO-8601 UTC with microseconds.  The Gregorian calendar repeats every 400
 * years (146097 days), so counting days from 0000-03-01 we peel off 400-year
 * eras, then centuries (36524 days), 4-year cycles (1461) and years (365).
 * The last century of an era and the last year of a cycle are one day
 * longer; clamping the quotients puts that extra day where it belongs.
 * Floor division keeps it right before 1970 and for the whole int64 range;
 * years outside 0..9999 use ISO 8601's signed expanded form. */
static size_t fmt_now(char *o, int64_t t_us)
{
    const int64_t us_day = 86400000000LL;
    int64_t day = t_us / us_day, us = t_us % us_day;
    if (us < 0) {
        us += us_day;
        day--;
    }
    int64_t z = day + 719468; /* days from 0000-03-01 to 1970-01-01 */
    int64_t era = (z >= 0 ? z : z - 146096) / 146097, d = z - era * 146097;
    int64_t c = d / 36524 > 3 ? 3 : d / 36524;
    d -= c * 36524;
    int64_t q = d / 1461;
    d -= q * 1461;
    int64_t y = d / 365 > 3 ? 3 : d / 365;
    d -= y * 365;
    int m = 11;
    while (mstart[m] > d)
        m--;
    int64_t year = era * 400 + c * 100 + q * 4 + y + (m >= 10);
    char t[24], *e = t + sizeof t, *s, *o0 = o;
    s = put_u64(e, (uint64_t)(year < 0 ? -year : year));
    while (e - s < 4)
        *--s = '0';
    if (year < 0 || year > 9999)
        *o++ = year < 0 ? '-' : '+';
    memcpy(o, s, (size_t)(e - s));
    o += e - s;
    *o++ = '-';
    o = two(o, m < 10 ? m + 3 : m - 9, '-');
    o = two(o, d - mstart[m] + 1, 'T');
    int64_t sec = us / 1000000;
    o = two(o, sec / 3600, ':');
    o = two(o, sec / 60 % 60, ':');
    o = two(o, sec % 60, '.');
    s = put_u64(e, (uint64_t)(us % 1000000 + 1000000)); /* "1" + 6 digits */
    memcpy(o, s + 1, 6);
    o[6] = 'Z';
    return (size_t)(o + 7 - o0);
}

/* Random hex, two digits per table lookup, 16 digits per generator call. */
#define HEX(x) #x "0" #x "1" #x "2" #x "3" #x "4" #x "5" #x "6" #x "7" \
               #x "8" #x "9" #x "a" #x "b" #x "c" #x "d" #x "e" #x "f"
static const char hexpairs[] = HEX(0) HEX(1) HEX(2) HEX(3) HEX(4) HEX(5) HEX(6)
    HEX(7) HEX(8) HEX(9) HEX(a) HEX(b) HEX(c) HEX(d) HEX(e) HEX(f);

static void put_hex(char *o, size_t n, uint64_t *rng)
{
    while (n) {
        uint64_t r = next(rng); /* the high bits of xorshift64* are best */
        size_t m = n < 16 ? n : 16;
        for (n -= m; m >= 2; m -= 2, o += 2, r <<= 8)
            memcpy(o, hexpairs + (r >> 56) * 2, 2);
        if (m)
            *o++ = hexpairs[(r >> 56) * 2];
    }
}

/* ---- template compilation ---------------------------------------------- */

static int parse_i64(const char *s, size_t n, int64_t *v)
{
    int neg = n > 0 && s[0] == '-';
    size_t i = (size_t)neg;
    uint64_t m = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (i == n)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned dg = (unsigned)(s[i] - '0');
        if (m > (lim - dg) / 10)
            return -1;
        m = m * 10 + dg;
    }
    *v = neg ? (int64_t)(0 - m) : (int64_t)m; /* 0 - 2^63 wraps to INT64_MIN */
    return 0;
}

/* A decimal "-?digits[.digits]" as ceil(value * 1000).  Working in exact
 * thousandths keeps randf free of floating point: 0.1 is 100, not
 * 100.00000000000001, and a render is just an integer draw. */
static int parse_milli(const char *s, size_t n, int64_t *k)
{
    int neg = n > 0 && s[0] == '-', rest = 0, frac = 0;
    size_t i = (size_t)neg, nd = 0;
    uint64_t m = 0;
    for (; i < n && isdigit((unsigned char)s[i]); i++, nd++) {
        if (nd >= 15)
            return -1;
        m = m * 10 + (uint64_t)(s[i] - '0');
    }
    if (nd == 0)
        return -1;
    if (i < n && s[i] == '.') {
        size_t fd = 0;
        for (i++; i < n && isdigit((unsigned char)s[i]); i++, fd++) {
            if (fd < 3)
                m = m * 10 + (uint64_t)(s[i] - '0'), frac++;
            else if (s[i] != '0')
                rest = 1;
        }
        if (fd == 0)
            return -1;
    }
    if (i != n)
        return -1;
    for (; frac < 3; frac++)
        m *= 10;
    *k = neg ? -(int64_t)m : (int64_t)(m + (uint64_t)rest);
    return 0;
}

/* Split "A:B" at the first colon. */
static int split2(const char *s, size_t n, size_t *a)
{
    const char *c = memchr(s, ':', n);
    *a = c ? (size_t)(c - s) : 0;
    return c ? 0 : -1;
}

#define IS(lit) (n == sizeof lit - 1 && memcmp(s, lit, n) == 0)
#define HAS(pre) (n >= sizeof pre - 1 && memcmp(s, pre, sizeof pre - 1) == 0)

/* Parse the text between "{{" and "}}" at text offset off.  Returns NULL, or
 * the reason it is not acceptable (`accepted` when the name is unknown). */
static const char *parse_ph(il_payload *p, size_t off, size_t n, part *pt, size_t *w)
{
    const char *s = p->text + off;
    size_t a;
    int64_t x, y;
    memset(pt, 0, sizeof *pt);
    if (IS("device") || IS("device1"))
        pt->kind = n == 6 ? P_DEV : P_DEV1, *w = 10;
    else if (IS("seq"))
        pt->kind = P_SEQ, *w = 20;
    else if (IS("now"))
        pt->kind = P_NOW, *w = NOW_WIDTH;
    else if (IS("{{"))
        pt->kind = P_LIT, pt->off = off, pt->len = *w = 2;
    else if (HAS("rand:")) {
        s += 5, n -= 5;
        if (split2(s, n, &a) || parse_i64(s, a, &x) ||
            parse_i64(s + a + 1, n - a - 1, &y) || x > y)
            return "rand needs two integers A:B with A <= B";
        pt->kind = P_RAND, pt->lo = x;
        set_span(pt, (uint64_t)y - (uint64_t)x);
        a = width_of(put_signed, x), *w = width_of(put_signed, y);
        *w = a > *w ? a : *w;
    } else if (HAS("randf:")) {
        s += 6, n -= 6;
        if (split2(s, n, &a) || parse_milli(s, a, &x) ||
            parse_milli(s + a + 1, n - a - 1, &y) || x > y)
            return "randf needs two decimal numbers A:B with A <= B and at "
                   "most 15 integer digits";
        /* [A, B) in thousandths is ceil(1000A) .. ceil(1000B) - 1; a range
         * narrower than 0.001 renders ceil(1000A) / 1000. */
        y = y - 1 < x ? x : y - 1;
        pt->kind = P_RANDF, pt->lo = x;
        set_span(pt, (uint64_t)(y - x));
        a = width_of(put_milli, x), *w = width_of(put_milli, y);
        *w = a > *w ? a : *w;
    } else if (HAS("choice:")) {
        s += 7, n -= 7, off += 7;
        pt->kind = P_CHOICE, pt->off = p->words.n / sizeof(span), *w = 0;
        for (size_t i = 0; i <= n; i = a + 1) {
            const char *bar = memchr(s + i, '|', n - i);
            a = bar ? (size_t)(bar - s) : n;
            span wd = {off + i, a - i};
            if (wd.len == 0)
                return "choice needs non-empty words separated by |";
            if (buf_put(&p->words, &wd, sizeof wd))
                return "out of memory";
            pt->len++;
            *w = wd.len > *w ? wd.len : *w;
        }
        set_span(pt, pt->len - 1);
    } else if (HAS("hex:")) {
        if (parse_i64(s + 4, n - 4, &x) || x < 1 || x > 64)
            return "hex needs a digit count N in 1..64";
        pt->kind = P_HEX, pt->len = *w = (size_t)x;
    } else
        return accepted;
    return NULL;
}

/* Find the first pair of ch in s[0..n). */
static const char *find2(const char *s, size_t n, char ch)
{
    const char *e = s + n;
    while (e - s >= 2) {
        const char *q = memchr(s, ch, (size_t)(e - s) - 1);
        if (!q)
            return NULL;
        if (q[1] == ch)
            return q;
        s = q + 1;
    }
    return NULL;
}

/* Compile text[off, off+len) into parts and append it as one more line. */
static int compile(il_payload *p, size_t off, size_t len, const char *where,
                   size_t lno, char *eb, size_t el)
{
    const char *s = p->text + off;
    line ln = {p->parts.n / sizeof(part), 0, 0};
    size_t i = 0;
    for (;;) {
        const char *o = find2(s + i, len - i, '{');
        size_t at = o ? (size_t)(o - s) : len, w;
        part pt = {P_LIT, off + i, at - i, 0, 0, 0};
        if (at > i && buf_put(&p->parts, &pt, sizeof pt))
            return fail(eb, el, IL_PAYLOAD_EINVAL, where, lno, "out of memory");
        ln.max += at - i;
        if (!o)
            break;
        const char *c = find2(s + at + 2, len - at - 2, '}');
        if (!c)
            return fail(eb, el, IL_PAYLOAD_EINVAL, where, lno,
                        "unterminated placeholder \"%.*s\" at offset %zu; "
                        "expected \"}}\"",
                        (int)(len - at > 40 ? 40 : len - at), s + at, at);
        size_t cl = (size_t)(c - s) - at - 2;
        const char *why = parse_ph(p, off + at + 2, cl, &pt, &w);
        if (why)
            return fail(eb, el, IL_PAYLOAD_EINVAL, where, lno,
                        "%s placeholder \"%.*s\" at offset %zu; %s",
                        why == accepted ? "unknown" : "invalid", (int)(cl + 4),
                        s + at, at, why);
        if (buf_put(&p->parts, &pt, sizeof pt))
            return fail(eb, el, IL_PAYLOAD_EINVAL, where, lno, "out of memory");
        ln.max += w;
        i = at + cl + 4;
    }
    ln.n = p->parts.n / sizeof(part) - ln.first;
    if (buf_put(&p->lines, &ln, sizeof ln))
        return fail(eb, el, IL_PAYLOAD_EINVAL, where, lno, "out of memory");
    p->nlines++;
    p->max_len = ln.max > p->max_len ? ln.max : p->max_len;
    return 0;
}

/* The first (or last) non-blank byte a line always emits, or 0 when a
 * placeholder could come first: such a line is not known to be an object. */
static char edge(const il_payload *p, const line *ln, int last)
{
    const part *pt = (const part *)p->parts.d + ln->first;
    for (size_t k = 0; k < ln->n; k++) {
        const part *q = pt + (last ? ln->n - 1 - k : k);
        if (q->kind != P_LIT)
            return 0;
        for (size_t j = 0; j < q->len; j++) {
            char c = p->text[q->off + (last ? q->len - 1 - j : j)];
            if (!is_ws(c))
                return c;
        }
    }
    return 0;
}

static int line_is_object(const il_payload *p, size_t i)
{
    const line *ln = (const line *)p->lines.d + i;
    return edge(p, ln, 0) == '{' && edge(p, ln, 1) == '}';
}

static il_payload *payload_new(uint64_t seed)
{
    il_payload *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    /* Multiplying by an odd constant is a bijection, so a non-zero seed stays
     * non-zero (xorshift's one forbidden state) while small seeds such as 1
     * and 2 start far apart; a few discarded outputs finish the mixing. */
    p->rng = (seed ? seed : 0x853C49E6748FEA9BULL) * 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 4; i++)
        next(&p->rng);
    return p;
}

/* ---- public API: build ------------------------------------------------- */

int il_payload_from_template(const char *tmpl, uint64_t seed, il_payload **out,
                             char *errbuf, size_t errlen)
{
    *out = NULL;
    if (!tmpl)
        return fail(errbuf, errlen, IL_PAYLOAD_EINVAL, "template", 0, "missing");
    size_t n = strlen(tmpl);
    il_payload *p = payload_new(seed);
    if (!p || !(p->text = malloc(n + 1))) {
        il_payload_free(p);
        return fail(errbuf, errlen, IL_PAYLOAD_EINVAL, "template", 0, "out of memory");
    }
    memcpy(p->text, tmpl, n + 1);
    int rc = compile(p, 0, n, "template", 0, errbuf, errlen);
    if (rc) {
        il_payload_free(p);
        return rc;
    }
    p->is_object = line_is_object(p, 0);
    *out = p;
    return 0;
}

static int read_all(const char *path, buf *b, char *eb, size_t el)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(eb, el, IL_PAYLOAD_EIO, path, 0,
                    "cannot open payload file: %s", strerror(errno));
    /* Refuse a huge file before reading any of it; the read loop below
     * still enforces the limit for files whose size cannot be asked. */
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        if (sz > 0 && (unsigned long)sz > FILE_LIMIT) {
            fclose(f);
            return fail(eb, el, IL_PAYLOAD_EIO, path, 0,
                        "payload file is %ld bytes, over the %zu-byte (64 MiB) "
                        "limit", sz, FILE_LIMIT);
        }
    }
    rewind(f);
    char chunk[16384];
    size_t k;
    int rc = 0;
    while (!rc && (k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b->n + k > FILE_LIMIT)
            rc = fail(eb, el, IL_PAYLOAD_EIO, path, 0,
                      "payload file is over the %zu-byte (64 MiB) limit", FILE_LIMIT);
        else if (buf_put(b, chunk, k))
            rc = fail(eb, el, IL_PAYLOAD_EIO, path, 0, "out of memory");
    }
    if (!rc && !ferror(f) && buf_put(b, "", 0))
        rc = fail(eb, el, IL_PAYLOAD_EIO, path, 0, "out of memory");
    if (!rc && ferror(f))
        rc = fail(eb, el, IL_PAYLOAD_EIO, path, 0, "cannot read payload file: %s",
                  strerror(errno));
    fclose(f);
    return rc;
}

static int load_ndjson(il_payload *p, size_t n, const char *path, char *eb, size_t el)
{
    size_t pos = 0, lno = 0;
    while (pos < n) {
        const char *s = p->text + pos, *nl = memchr(s, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - s) : n - pos, a = 0, b = len;
        lno++;
        while (a < b && is_ws(s[a]))
            a++;
        while (b > a && is_ws(s[b - 1]))
            b--;
        if (a < b) {
            int rc = s[a] == '{' && s[b - 1] == '}'
                         ? compile(p, pos + a, b - a, path, lno, eb, el) : 1;
            if (rc < 0)
                return rc;
            if (rc || !line_is_object(p, p->nlines - 1))
                return fail(eb, el, IL_PAYLOAD_EINVAL, path, lno,
                            "line is not a JSON object (it must start with '{' "
                            "and end with '}')");
        }
        pos += len + 1;
    }
    return 0;
}

/* Strict JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?  so that
 * "007" or "1." stay strings and the object remains valid JSON. */
static int is_number(const char *s, size_t n)
{
    size_t i = s[0] == '-', d;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        for (d = ++i; i < n && isdigit((unsigned char)s[i]); i++) {}
        if (i == d)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i += i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-') ? 2 : 1;
        for (d = i; i < n && isdigit((unsigned char)s[i]); i++) {}
        if (i == d)
            return 0;
    }
    return i == n;
}

static int put_json_str(buf *b, const char *s, size_t n)
{
    int bad = buf_put(b, "\"", 1);
    for (size_t i = 0, a = 0; i <= n && !bad; i++) {
        unsigned char c = i < n ? (unsigned char)s[i] : 0;
        if (i < n && c >= 0x20 && c != '"' && c != '\\')
            continue;
        bad = buf_put(b, s + a, i - a); /* flush the run that needs no escape */
        a = i + 1;
        if (i < n) {
            char esc[8];
            snprintf(esc, sizeof esc, c < 0x20 ? "\\u%04x" : "\\%c", c);
            bad |= buf_put(b, esc, strlen(esc));
        }
    }
    return bad | buf_put(b, "\"", 1);
}

/* Parse one CSV record at *pos into unescaped bytes (sc) and field spans
 * (fl).  Quoted fields may hold commas, "" for a quote, and newlines. */
static const char *csv_record(const char *s, size_t n, size_t *pos, size_t *lno,
                              buf *sc, buf *fl)
{
    size_t i = *pos;
    sc->n = fl->n = 0;
    for (;;) {
        span f = {sc->n, 0};
        if (i < n && s[i] == '"') {
            for (i++;; i++) {
                if (i >= n)
                    return "unterminated quoted field";
                if (s[i] == '"' && (i + 1 >= n || s[i + 1] != '"'))
                    break;
                i += s[i] == '"';
                *lno += s[i] == '\n';
                if (buf_put(sc, s + i, 1))
                    return "out of memory";
            }
            i++;
            i += i < n && s[i] == '\r' && (i + 1 == n || s[i + 1] == '\n');
            if (i < n && s[i] != ',' && s[i] != '\n')
                return "unexpected text after a closing quote";
        } else {
            size_t a = i, b;
            while (i < n && s[i] != ',' && s[i] != '\n')
                i++;
            b = i; /* drop the CR of a CRLF line ending */
            b -= b > a && s[b - 1] == '\r' && (i == n || s[i] == '\n');
            if (buf_put(sc, s + a, b - a))
                return "out of memory";
        }
        f.len = sc->n - f.off;
        if (buf_put(fl, &f, sizeof f))
            return "out of memory";
        if (i < n && s[i] == ',') {
            i++;
            continue;
        }
        if (i < n)
            i++, ++*lno;
        *pos = i;
        return NULL;
    }
}

static int load_csv(il_payload *p, const char *s, size_t n, const char *path,
                    char *eb, size_t el)
{
    buf sc = {0}, fl = {0}, keys = {0}, koff = {0}, out = {0}, rows = {0};
    size_t pos = 0, lno = 1, nh = 0;
    int rc = 0;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        pos = 3; /* spreadsheet exports often start with a UTF-8 BOM */
    while (!rc && pos < n) {
        size_t at = lno, j = pos + (s[pos] == '\r');
        if (j == n || s[j] == '\n') { /* blank line */
            pos = j + (j < n), lno++;
            continue;
        }
        const char *why = csv_record(s, n, &pos, &lno, &sc, &fl);
        const span *f = (const span *)fl.d;
        size_t nf = fl.n / sizeof(span);
        if (why) {
            rc = fail(eb, el, IL_PAYLOAD_EINVAL, path, at, "%s", why);
        } else if (!nh) { /* header: keep each name as ready-made "name": */
            for (size_t k = 0; k < nf && !rc; k++)
                rc = buf_put(&koff, &keys.n, sizeof keys.n) ||
                     put_json_str(&keys, sc.d + f[k].off, f[k].len) ||
                     buf_put(&keys, ":", 1);
            rc = rc || buf_put(&koff, &keys.n, sizeof keys.n);
            rc = rc ? fail(eb, el, IL_PAYLOAD_EINVAL, path, at, "out of memory") : 0;
            nh = nf;
        } else if (nf != nh) {
            rc = fail(eb, el, IL_PAYLOAD_EINVAL, path, at,
                      "row has %zu fields but the header has %zu", nf, nh);
        } else {
            const size_t *ko = (const size_t *)koff.d;
            row r = {out.n, 0, at};
            int bad = buf_put(&out, "{", 1);
            for (size_t k = 0; k < nf; k++) {
                const char *v = sc.d + f[k].off;
                bad |= (k && buf_put(&out, ",", 1)) ||
                       buf_put(&out, keys.d + ko[k], ko[k + 1] - ko[k]) ||
                       (f[k].len && is_number(v, f[k].len)
                            ? buf_put(&out, v, f[k].len)
                            : put_json_str(&out, v, f[k].len));
            }
            bad |= buf_put(&out, "}\n", 2);
            r.len = out.n - r.off - 1;
            bad |= buf_put(&rows, &r, sizeof r);
            if (bad || out.n > TEXT_LIMIT)
                rc = fail(eb, el, IL_PAYLOAD_EINVAL, path, at, bad ? "out of memory"
                          : "dataset expands to more than 256 MiB of JSON");
        }
    }
    p->text = out.d;
    const row *r = (const row *)rows.d;
    if (!rc && rows.n == 0)
        rc = fail(eb, el, IL_PAYLOAD_EINVAL, path, 0, "CSV dataset has no data rows");
    for (size_t k = 0; !rc && k < rows.n / sizeof(row); k++)
        rc = compile(p, r[k].off, r[k].len, path, r[k].lno, eb, el);
    free(sc.d), free(fl.d), free(keys.d), free(koff.d), free(rows.d);
    return rc;
}

static int has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), k = strlen(ext);
    for (size_t i = 0; n >= k && i < k; i++)
        if (tolower((unsigned char)path[n - k + i]) != ext[i])
            return 0;
    return n >= k;
}

int il_payload_from_file(const char *path, uint64_t seed, il_payload **out,
                         char *errbuf, size_t errlen)
{
    buf b = {0};
    *out = NULL;
    int rc = read_all(path, &b, errbuf, errlen);
    il_payload *p = rc ? NULL : payload_new(seed);
    if (!rc && !p)
        rc = fail(errbuf, errlen, IL_PAYLOAD_EINVAL, path, 0, "out of memory");
    if (rc) {
        free(b.d);
        return rc;
    }
    if (has_ext(path, ".ndjson") || has_ext(path, ".jsonl")) {
        p->text = b.d;
        rc = load_ndjson(p, b.n, path, errbuf, errlen);
        if (!rc && !p->nlines)
            rc = fail(errbuf, errlen, IL_PAYLOAD_EINVAL, path, 0,
                      "NDJSON dataset has no lines");
        p->is_object = 1;
    } else if (has_ext(path, ".csv")) {
        rc = load_csv(p, b.d, b.n, path, errbuf, errlen);
        free(b.d);
        p->is_object = 1;
    } else {
        while (b.n && (b.d[b.n - 1] == '\n' || b.d[b.n - 1] == '\r'))
            b.n--;
        p->text = b.d;
        rc = compile(p, 0, b.n, path, 0, errbuf, errlen);
        p->is_object = rc ? 0 : line_is_object(p, 0);
    }
    if (rc) {
        il_payload_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* Most parts are a few bytes long, where calling memcpy costs more than the
 * copy itself; two overlapping fixed-size moves cover any short length. */
static void copy(char *o, const char *s, size_t n)
{
    if (n >= 16)
        memcpy(o, s, n);
    else if (n >= 8)
        memcpy(o, s, 8), memcpy(o + n - 8, s + n - 8, 8);
    else if (n >= 4)
        memcpy(o, s, 4), memcpy(o + n - 4, s + n - 4, 4);
    else if (n)
        o[0] = s[0], o[n / 2] = s[n / 2], o[n - 1] = s[n - 1];
}

/* ---- public API: use --------------------------------------------------- */

int il_payload_render(il_payload *p, uint32_t dev, uint64_t seq, int64_t t_us,
                      char *out, size_t cap)
{
    const line *ln = (const line *)p->lines.d;
    if (p->nlines > 1) /* (dev + seq) % n without wrapping at 2^64 */
        ln += (dev % p->nlines + seq % p->nlines) % p->nlines;
    const part *pt = (const part *)p->parts.d + ln->first, *end = pt + ln->n;
    char tmp[48], *const te = tmp + sizeof tmp;
    size_t pos = 0;
    if (cap > INT_MAX)
        cap = INT_MAX; /* the length must fit the int return value */
    for (; pt < end; pt++) {
        const char *s = te;
        size_t n = SIZE_MAX; /* SIZE_MAX: formatted backwards into tmp */
        switch (pt->kind) {
        case P_LIT: s = p->text + pt->off, n = pt->len; break;
        case P_DEV: s = put_u64(te, dev); break;
        case P_DEV1: s = put_u64(te, (uint64_t)dev + 1); break;
        case P_SEQ: s = put_u64(te, seq); break;
        case P_RAND: s = put_signed(te, (uint64_t)pt->lo + draw(&p->rng, pt)); break;
        case P_RANDF: s = put_milli(te, (uint64_t)pt->lo + draw(&p->rng, pt)); break;
        case P_NOW: s = tmp, n = fmt_now(tmp, t_us); break;
        case P_CHOICE: {
            const span *w = (const span *)p->words.d + pt->off + draw(&p->rng, pt);
            s = p->text + w->off, n = w->len;
            break;
        }
        case P_HEX:
            if (cap - pos < pt->len)
                return IL_PAYLOAD_ENOSPC;
            put_hex(out + pos, pt->len, &p->rng);
            pos += pt->len;
            continue;
        }
        if (n == SIZE_MAX)
            n = (size_t)(te - s);
        if (cap - pos < n)
            return IL_PAYLOAD_ENOSPC;
        copy(out + pos, s, n);
        pos += n;
    }
    return (int)pos;
}

int il_payload_is_object(const il_payload *p) { return p->is_object; }

size_t il_payload_max_len(const il_payload *p) { return p->max_len; }

void il_payload_free(il_payload *p)
{
    if (!p)
        return;
    free(p->text);
    free(p->parts.d);
    free(p->words.d);
    free(p->lines.d);
    free(p);
}
