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
#include <strings.h>
#include <sys/stat.h>

#define FILE_LIMIT ((size_t)64 << 20)  /* largest payload file we read */
#define TEXT_LIMIT ((size_t)256 << 20) /* largest JSON a CSV may expand to */
#define NOW_WIDTH 32 /* "-290308-12-21T19:59:05.224192Z" is 30 bytes */
#define EINV IL_PAYLOAD_EINVAL

#if defined(__GNUC__) /* lets GCC and clang check the error formats */
#define PRINTF_LIKE __attribute__((format(printf, 6, 7)))
#else
#define PRINTF_LIKE
#endif

enum { P_LIT, P_DEV, P_DEV1, P_SEQ, P_RAND, P_RANDF, P_CHOICE, P_HEX, P_NOW };

/* A growable byte array.  Parts, words and lines live in these too; realloc
 * returns memory aligned for any type, so the casts back are safe. */
typedef struct { char *d; size_t n, cap; } buf;

typedef struct {
    int kind;
    size_t off, len; /* literal: span of text; choice: first word, count;
                        hex: digit count */
    int64_t lo;      /* rand: A; randf: smallest value in thousandths */
    uint64_t span;   /* random draws are uniform in [0, span] */
    uint64_t thr;    /* draws below thr are rejected to remove bias */
} part;

typedef struct { size_t off, len; } span;      /* a choice word, a CSV field */
typedef struct { size_t first, n, max; } line; /* one compiled template */
typedef struct { size_t off, len, lno; } row;  /* a CSV record's object */

struct il_payload {
    char *text; /* owned source bytes that literal parts point into */
    buf parts, words, lines;
    size_t nlines, max_len;
    uint64_t rng;
    int is_object;
};

static const char accepted[] = "accepted: device, device1, seq, rand:A:B, "
                               "randf:A:B, choice:a|b, hex:N, now";

/* Every error is one sentence prefixed by where it happened ("template", a
 * path, or path:line), so the user can find the offending text. */
PRINTF_LIKE
static int fail(char *eb, size_t el, int rc, const char *where, size_t lno,
                const char *fmt, ...)
{
    if (!eb || !el)
        return rc;
    int k = lno ? snprintf(eb, el, "%s:%zu: ", where, lno) : snprintf(eb, el, "%s: ", where);
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
    if (b->cap - b->n < n || !b->d) { /* never leave d NULL, even for n = 0 */
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n)
            cap *= 2;
        char *d = realloc(b->d, cap);
        if (!d)
            return -1;
        b->d = d, b->cap = cap;
    }
    if (n)
        memcpy(b->d + b->n, s, n);
    b->n += n;
    return 0;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* ---- random numbers ---------------------------------------------------- */

/* xorshift64*: one word of state, no allocation, statistics good enough for
 * test data, and reproducible from a single seed. */
static uint64_t next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Rejecting the draws that fall into the short last stripe makes the mapping
 * exactly uniform.  Spans that fit 32 bits use a multiply-shift (no division
 * per draw); wider ones reject raw values below 2^64 mod (span + 1) and take
 * the remainder; the full 64-bit span takes raw values. */
static void set_span(part *pt, uint64_t hi)
{
    uint64_t n = hi + 1;
    pt->span = hi;
    pt->thr = hi <= UINT32_MAX ? ((1ULL << 32) - n) % n : n ? (0 - n) % n : 0;
}

static uint64_t draw(uint64_t *s, const part *pt)
{
    uint64_t n = pt->span + 1, r;
    if (pt->span <= UINT32_MAX) {
        do r = (next(s) >> 32) * n; while ((uint32_t)r < pt->thr);
        return r >> 32;
    }
    if (n == 0)
        return next(s);
    do r = next(s); while (r < pt->thr);
    return r % n;
}

/* ---- formatting -------------------------------------------------------- */

#define TEN(x) #x "0" #x "1" #x "2" #x "3" #x "4" #x "5" #x "6" #x "7" #x "8" #x "9"
#define HEX(x) TEN(x) #x "a" #x "b" #x "c" #x "d" #x "e" #x "f"
static const char pairs[] = TEN(0) TEN(1) TEN(2) TEN(3) TEN(4) TEN(5) TEN(6)
    TEN(7) TEN(8) TEN(9);
static const char hexpairs[] = HEX(0) HEX(1) HEX(2) HEX(3) HEX(4) HEX(5) HEX(6)
    HEX(7) HEX(8) HEX(9) HEX(a) HEX(b) HEX(c) HEX(d) HEX(e) HEX(f);

/* Numbers are written backwards, ending at `end`, returning the first byte:
 * no digit reversal and no snprintf.  Two digits per division halve the
 * chain of dependent multiplies. */
static char *put_u64(char *end, uint64_t v)
{
    for (; v >= 100; v /= 100)
        end -= 2, memcpy(end, pairs + v % 100 * 2, 2);
    if (v >= 10)
        return memcpy(end - 2, pairs + v * 2, 2);
    *--end = (char)('0' + v);
    return end;
}

/* u holds a two's complement int64, so sums such as A + draw are formed in
 * unsigned arithmetic without overflow.  milli prints it in thousandths
 * with exactly three decimals. */
static char *put_int(char *end, uint64_t u, int milli)
{
    int neg = (int)(u >> 63);
    uint64_t m = neg ? 0 - u : u;
    for (int i = 0; milli && i < 3; i++, m /= 10)
        *--end = (char)('0' + m % 10);
    if (milli)
        *--end = '.';
    end = put_u64(end, m);
    if (neg)
        *--end = '-';
    return end;
}

static size_t int_width(int64_t v, int milli)
{
    char t[32];
    return (size_t)(t + sizeof t - put_int(t + sizeof t, (uint64_t)v, milli));
}

static char *two(char *o, int64_t v, char sep)
{
    memcpy(o, pairs + v * 2, 2);
    o[2] = sep;
    return o + 3;
}

/* Day of the year on which each month starts, in a year that begins on
 * March 1 so that the leap day, when there is one, is the year's last. */
static const short mstart[12] = {0, 31, 61, 92, 122, 153, 184, 214, 245, 275, 306, 337};

/* ISO-8601 UTC with microseconds.  The Gregorian calendar repeats every 400
 * years (146097 days), so counting days from 0000-03-01 we peel off 400-year
 * eras, then centuries (36524 days), 4-year cycles (1461) and years (365).
 * The last century of an era and the last year of a cycle are one day
 * longer; clamping the quotients puts that day where it belongs.  Floor
 * division keeps this right before 1970 and over the whole int64 range;
 * years outside 0..9999 use ISO 8601's signed expanded form. */
static size_t fmt_now(char *o, int64_t t_us)
{
    const int64_t us_day = 86400000000LL;
    int64_t day = t_us / us_day, us = t_us % us_day;
    if (us < 0)
        us += us_day, day--;
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
    char t[24], *e = t + sizeof t, *s = put_u64(e, (uint64_t)(year < 0 ? -year : year));
    char *o0 = o;
    while (e - s < 4)
        *--s = '0';
    if (year < 0 || year > 9999)
        *o++ = year < 0 ? '-' : '+';
    memcpy(o, s, (size_t)(e - s));
    o += e - s;
    *o++ = '-';
    o = two(o, m < 10 ? m + 3 : m - 9, '-');
    o = two(o, d - mstart[m] + 1, 'T');
    o = two(o, us / 3600000000LL, ':');
    o = two(o, us / 60000000 % 60, ':');
    o = two(o, us / 1000000 % 60, '.');
    s = put_u64(e, (uint64_t)(us % 1000000 + 1000000)); /* "1" + 6 digits */
    memcpy(o, s + 1, 6);
    o[6] = 'Z';
    return (size_t)(o + 7 - o0);
}

/* Random hex, two digits per table lookup, 16 digits per generator call;
 * the high bits of xorshift64* are its best, so digits come from the top. */
static void put_hex(char *o, size_t n, uint64_t *rng)
{
    while (n) {
        uint64_t r = next(rng);
        size_t m = n < 16 ? n : 16;
        for (n -= m; m >= 2; m -= 2, o += 2, r <<= 8)
            memcpy(o, hexpairs + (r >> 56) * 2, 2);
        if (m)
            *o++ = hexpairs[(r >> 56) * 2];
    }
}

/* ---- template compilation ---------------------------------------------- */

/* "-?digits" as an int64, or with milli "-?digits[.digits]" as the ceiling
 * of value * 1000 (at most 15 integer digits).  Exact thousandths keep randf
 * free of floating point: 0.1 is 100, not 100.00000000000001. */
static int parse_num(const char *s, size_t n, int milli, int64_t *v)
{
    int neg = n && s[0] == '-', rest = 0;
    size_t i = (size_t)neg, d0 = i, f = 0;
    uint64_t m = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n && isdigit((unsigned char)s[i]); i++) {
        unsigned dg = (unsigned)(s[i] - '0');
        if (m > (lim - dg) / 10 || (milli && i - d0 >= 15))
            return -1;
        m = m * 10 + dg;
    }
    if (i == d0)
        return -1;
    if (milli && i < n && s[i] == '.') {
        for (d0 = ++i; i < n && isdigit((unsigned char)s[i]); i++)
            if (i - d0 < 3)
                m = m * 10 + (uint64_t)(s[i] - '0'), f++;
            else
                rest |= s[i] != '0';
        if (i == d0)
            return -1;
    }
    for (; milli && f < 3; f++)
        m *= 10;
    m += (uint64_t)(rest && !neg); /* ceiling: only positives round up */
    if (i != n)
        return -1;
    *v = neg && m ? -(int64_t)(m - 1) - 1 : (int64_t)m; /* reaches INT64_MIN */
    return 0;
}

/* Parse "A:B" (split at the first colon) into x <= y. */
static int parse_range(const char *s, size_t n, int milli, int64_t *x, int64_t *y)
{
    const char *c = memchr(s, ':', n);
    return !c || parse_num(s, (size_t)(c - s), milli, x) ||
           parse_num(c + 1, n - (size_t)(c - s) - 1, milli, y) || *x > *y;
}

#define IS(lit) (n == sizeof lit - 1 && memcmp(s, lit, n) == 0)
#define HAS(pre) (n >= sizeof pre - 1 && memcmp(s, pre, sizeof pre - 1) == 0)

/* Parse the text between "{{" and "}}", found at text offset off, into *pt
 * and its widest rendering *w.  Returns NULL, or why it is not acceptable
 * (`accepted` when the name itself is unknown). */
static const char *parse_ph(il_payload *p, size_t off, size_t n, part *pt, size_t *w)
{
    const char *s = p->text + off;
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
    else if (HAS("rand:") || HAS("randf:")) {
        int milli = s[4] == 'f';
        if (parse_range(s + 5 + milli, n - 5 - (size_t)milli, milli, &x, &y))
            return milli ? "randf needs decimal numbers A:B with A <= B and at "
                           "most 15 integer digits"
                         : "rand needs integers A:B with A <= B";
        /* For randf, [A, B) in thousandths is ceil(1000A) .. ceil(1000B) - 1;
         * a range narrower than 0.001 renders ceil(1000A) / 1000. */
        if (milli)
            y = y - 1 < x ? x : y - 1;
        pt->kind = milli ? P_RANDF : P_RAND, pt->lo = x;
        set_span(pt, (uint64_t)y - (uint64_t)x);
        size_t wx = int_width(x, milli), wy = int_width(y, milli);
        *w = wx > wy ? wx : wy; /* |value| <= max(|A|, |B|) */
    } else if (HAS("choice:")) {
        s += 7, n -= 7, off += 7;
        pt->kind = P_CHOICE, pt->off = p->words.n / sizeof(span), *w = 0;
        for (size_t i = 0, a; i <= n; i = a + 1) {
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
        if (parse_num(s + 4, n - 4, 0, &x) || x < 1 || x > 64)
            return "hex needs a digit count N in 1..64";
        pt->kind = P_HEX, pt->len = *w = (size_t)x;
    } else
        return accepted;
    return NULL;
}

/* Find the first pair of ch in s[0..n). */
static const char *find2(const char *s, size_t n, char ch)
{
    for (const char *e = s + n, *q; e - s >= 2; s = q + 1) {
        if (!(q = memchr(s, ch, (size_t)(e - s) - 1)))
            return NULL;
        if (q[1] == ch)
            return q;
    }
    return NULL;
}

/* Compile text[off, off+len) into parts and append it as one more line. */
static int compile(il_payload *p, size_t off, size_t len, const char *where,
                   size_t lno, char *eb, size_t el)
{
    const char *s = p->text + off, *o = s;
    line ln = {p->parts.n / sizeof(part), 0, 0};
    for (size_t i = 0, at, w; o; i = at + w) {
        o = find2(s + i, len - i, '{');
        at = o ? (size_t)(o - s) : len;
        part pt = {P_LIT, off + i, at - i, 0, 0, 0};
        if (at > i && buf_put(&p->parts, &pt, sizeof pt))
            return fail(eb, el, EINV, where, lno, "out of memory");
        ln.max += at - i, w = 0;
        if (!o)
            break;
        const char *c = find2(s + at + 2, len - at - 2, '}');
        if (!c)
            return fail(eb, el, EINV, where, lno, "unterminated placeholder \"%.*s\" "
                        "at offset %zu; expected \"}}\"",
                        (int)(len - at > 40 ? 40 : len - at), s + at, at);
        size_t cl = (size_t)(c - s) - at - 2;
        const char *why = parse_ph(p, off + at + 2, cl, &pt, &w);
        if (why)
            return fail(eb, el, EINV, where, lno, "%s placeholder \"%.*s\" at offset "
                        "%zu; %s", why == accepted ? "unknown" : "invalid",
                        (int)(cl + 4), s + at, at, why);
        if (buf_put(&p->parts, &pt, sizeof pt))
            return fail(eb, el, EINV, where, lno, "out of memory");
        ln.max += w, w = cl + 4;
    }
    ln.n = p->parts.n / sizeof(part) - ln.first;
    if (buf_put(&p->lines, &ln, sizeof ln))
        return fail(eb, el, EINV, where, lno, "out of memory");
    p->nlines++;
    p->max_len = ln.max > p->max_len ? ln.max : p->max_len;
    return 0;
}

/* A line is an object when the first and last non-blank bytes it always
 * emits are '{' and '}'; a placeholder at either edge could emit anything. */
static int line_is_object(const il_payload *p, size_t i)
{
    const line *ln = (const line *)p->lines.d + i;
    const part *pt = (const part *)p->parts.d + ln->first;
    for (int last = 0; last < 2; last++) {
        char c = 0;
        for (size_t k = 0; !c && k < ln->n; k++) {
            const part *q = pt + (last ? ln->n - 1 - k : k);
            if (q->kind != P_LIT)
                return 0;
            for (size_t j = 0; !c && j < q->len; j++) {
                char b = p->text[q->off + (last ? q->len - 1 - j : j)];
                c = is_ws(b) ? 0 : b;
            }
        }
        if (c != "{}"[last])
            return 0;
    }
    return 1;
}

static il_payload *payload_new(uint64_t seed)
{
    il_payload *p = calloc(1, sizeof *p);
    /* Multiplying by an odd constant is a bijection, so a non-zero seed stays
     * non-zero (xorshift's one forbidden state) while small seeds such as 1
     * and 2 start far apart; a few discarded outputs finish the mixing. */
    if (p)
        p->rng = (seed ? seed : 0x853C49E6748FEA9BULL) * 0x9E3779B97F4A7C15ULL;
    for (int i = 0; p && i < 4; i++)
        next(&p->rng);
    if (p && buf_put(&p->parts, "", 0)) /* an empty line still needs a base */
        free(p), p = NULL;
    return p;
}

static int finish(il_payload *p, int rc, il_payload **out)
{
    if (rc)
        il_payload_free(p);
    else
        *out = p;
    return rc;
}

/* ---- public API: build ------------------------------------------------- */

int il_payload_from_template(const char *tmpl, uint64_t seed, il_payload **out,
                             char *errbuf, size_t errlen)
{
    size_t n = tmpl ? strlen(tmpl) : 0;
    il_payload *p = tmpl ? payload_new(seed) : NULL;
    *out = NULL;
    if (!tmpl)
        return fail(errbuf, errlen, EINV, "template", 0, "no template given");
    if (!p || !(p->text = malloc(n + 1)))
        return finish(p, fail(errbuf, errlen, EINV, "template", 0, "out of memory"), out);
    memcpy(p->text, tmpl, n + 1);
    int rc = compile(p, 0, n, "template", 0, errbuf, errlen);
    p->is_object = !rc && line_is_object(p, 0);
    return finish(p, rc, out);
}

static int read_all(const char *path, buf *b, char *eb, size_t el)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(eb, el, IL_PAYLOAD_EIO, path, 0, "cannot open payload file: %s",
                    strerror(errno));
    /* Refuse a huge regular file before reading any of it; the loop below
     * still enforces the limit for pipes and the like. */
    struct stat st;
    int rc = 0;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (uintmax_t)st.st_size > FILE_LIMIT)
        rc = fail(eb, el, IL_PAYLOAD_EIO, path, 0, "payload file is %jd bytes, over "
                  "the %zu-byte (64 MiB) limit", (intmax_t)st.st_size, FILE_LIMIT);
    char chunk[16384];
    for (size_t k; !rc && (k = fread(chunk, 1, sizeof chunk, f)) > 0;)
        if (b->n + k > FILE_LIMIT)
            rc = fail(eb, el, IL_PAYLOAD_EIO, path, 0, "payload file is over the "
                      "%zu-byte (64 MiB) limit", FILE_LIMIT);
        else if (buf_put(b, chunk, k))
            rc = fail(eb, el, IL_PAYLOAD_EIO, path, 0, "out of memory");
    if (!rc && ferror(f))
        rc = fail(eb, el, IL_PAYLOAD_EIO, path, 0, "cannot read payload file: %s",
                  strerror(errno));
    if (!rc && buf_put(b, "", 0))
        rc = fail(eb, el, IL_PAYLOAD_EIO, path, 0, "out of memory");
    fclose(f);
    return rc;
}

static int load_ndjson(il_payload *p, size_t n, const char *path, char *eb, size_t el)
{
    for (size_t pos = 0, lno = 1, len; pos < n; pos += len + 1, lno++) {
        const char *s = p->text + pos, *nl = memchr(s, '\n', n - pos);
        size_t a = 0, b = len = nl ? (size_t)(nl - s) : n - pos;
        while (a < b && is_ws(s[a]))
            a++;
        while (b > a && is_ws(s[b - 1]))
            b--;
        if (a == b)
            continue; /* blank lines are allowed and skipped */
        int rc = s[a] == '{' && s[b - 1] == '}' ? compile(p, pos + a, b - a, path, lno, eb, el) : 1;
        if (rc < 0)
            return rc;
        if (rc || !line_is_object(p, p->nlines - 1))
            return fail(eb, el, EINV, path, lno, "line is not a JSON object (it must "
                        "start with '{' and end with '}')");
    }
    return p->nlines ? 0 : fail(eb, el, EINV, path, 0, "NDJSON dataset has no lines");
}

static size_t skip_digits(const char *s, size_t n, size_t *i)
{
    size_t a = *i;
    while (*i < n && isdigit((unsigned char)s[*i]))
        ++*i;
    return *i - a;
}

/* Strict JSON number, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, so that
 * "007" or "1." stay strings and every object stays valid JSON. */
static int is_number(const char *s, size_t n)
{
    size_t i = s[0] == '-', a = i, k = skip_digits(s, n, &i);
    if (k == 0 || (k > 1 && s[a] == '0'))
        return 0;
    if (i < n && s[i] == '.' && (++i, skip_digits(s, n, &i) == 0))
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i += i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-') ? 2 : 1;
        if (skip_digits(s, n, &i) == 0)
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
        bad = buf_put(b, s + a, i - a); /* the run that needs no escaping */
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
 * (fl).  Quoted fields may hold commas, newlines and "" for a quote. */
static const char *csv_record(const char *s, size_t n, size_t *pos, size_t *lno,
                              buf *sc, buf *fl)
{
    size_t i = *pos;
    for (sc->n = fl->n = 0;; i++) {
        span f = {sc->n, 0};
        if (i < n && s[i] == '"') {
            for (i++; i >= n || s[i] != '"' || (i + 1 < n && s[i + 1] == '"'); i++) {
                if (i >= n)
                    return "unterminated quoted field";
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
            size_t a = i;
            while (i < n && s[i] != ',' && s[i] != '\n')
                i++;
            size_t b = i - (i > a && s[i - 1] == '\r' && (i == n || s[i] == '\n'));
            if (buf_put(sc, s + a, b - a)) /* b drops the CR of a CRLF */
                return "out of memory";
        }
        f.len = sc->n - f.off;
        if (buf_put(fl, &f, sizeof f))
            return "out of memory";
        if (i >= n || s[i] == '\n')
            break;
    }
    *lno += i < n;
    *pos = i + (i < n);
    return NULL;
}

/* Turn CSV rows into JSON object texts in one new buffer, then compile each
 * one.  Header names are escaped once, as ready-made "name": keys. */
static int load_csv(il_payload *p, const char *s, size_t n, const char *path,
                    char *eb, size_t el)
{
    buf sc = {0}, fl = {0}, keys = {0}, koff = {0}, out = {0}, rows = {0};
    size_t pos = 0, lno = 1, nh = 0;
    int rc = buf_put(&sc, "", 0) ? fail(eb, el, EINV, path, 0, "out of memory") : 0;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        pos = 3; /* spreadsheet exports often start with a UTF-8 BOM */
    while (!rc && pos < n) {
        size_t at = lno, j = pos + (s[pos] == '\r');
        if (j == n || s[j] == '\n') { /* a blank line */
            pos = j + (j < n), lno++;
            continue;
        }
        const char *why = csv_record(s, n, &pos, &lno, &sc, &fl);
        const span *f = (const span *)fl.d;
        const size_t *ko = (const size_t *)koff.d, nf = fl.n / sizeof(span);
        int bad = 0;
        if (why)
            rc = fail(eb, el, EINV, path, at, "%s", why);
        else if (!nh) {
            for (size_t k = 0; k < nf; k++)
                bad |= buf_put(&koff, &keys.n, sizeof keys.n) ||
                       put_json_str(&keys, sc.d + f[k].off, f[k].len) || buf_put(&keys, ":", 1);
            bad |= buf_put(&koff, &keys.n, sizeof keys.n);
            nh = nf;
        } else if (nf != nh)
            rc = fail(eb, el, EINV, path, at, "row has %zu field%s but the header has "
                      "%zu", nf, nf == 1 ? "" : "s", nh);
        else {
            row r = {out.n, 0, at};
            bad = buf_put(&out, "{", 1);
            for (size_t k = 0; k < nf; k++) {
                const char *v = sc.d + f[k].off;
                bad |= (k && buf_put(&out, ",", 1)) ||
                       buf_put(&out, keys.d + ko[k], ko[k + 1] - ko[k]) ||
                       (f[k].len && is_number(v, f[k].len) ? buf_put(&out, v, f[k].len)
                                                           : put_json_str(&out, v, f[k].len));
            }
            bad |= buf_put(&out, "}\n", 2);
            r.len = out.n - r.off - 1;
            bad |= buf_put(&rows, &r, sizeof r);
            if (!bad && out.n > TEXT_LIMIT)
                rc = fail(eb, el, EINV, path, at, "dataset expands to over 256 MiB of JSON");
        }
        if (bad)
            rc = fail(eb, el, EINV, path, at, "out of memory");
    }
    p->text = out.d;
    const row *r = (const row *)rows.d;
    if (!rc && rows.n == 0)
        rc = fail(eb, el, EINV, path, 0, "CSV dataset has no data rows");
    for (size_t k = 0; !rc && k < rows.n / sizeof(row); k++)
        rc = compile(p, r[k].off, r[k].len, path, r[k].lno, eb, el);
    free(sc.d), free(fl.d), free(keys.d), free(koff.d), free(rows.d);
    return rc;
}

static int has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), k = strlen(ext);
    return n >= k && strcasecmp(path + n - k, ext) == 0;
}

int il_payload_from_file(const char *path, uint64_t seed, il_payload **out,
                         char *errbuf, size_t errlen)
{
    buf b = {0};
    il_payload *p = NULL;
    *out = NULL;
    int rc = read_all(path, &b, errbuf, errlen);
    if (!rc && !(p = payload_new(seed)))
        rc = fail(errbuf, errlen, EINV, path, 0, "out of memory");
    if (rc) {
        free(b.d);
        return rc;
    }
    p->is_object = 1; /* datasets are checked or built to be objects */
    if (has_ext(path, ".ndjson") || has_ext(path, ".jsonl")) {
        p->text = b.d;
        rc = load_ndjson(p, b.n, path, errbuf, errlen);
    } else if (has_ext(path, ".csv")) {
        rc = load_csv(p, b.d, b.n, path, errbuf, errlen);
        free(b.d);
    } else {
        while (b.n && (b.d[b.n - 1] == '\n' || b.d[b.n - 1] == '\r'))
            b.n--; /* editors end files with a newline nobody means to send */
        p->text = b.d;
        rc = compile(p, 0, b.n, path, 0, errbuf, errlen);
        p->is_object = !rc && line_is_object(p, 0);
    }
    return finish(p, rc, out);
}

/* ---- public API: use --------------------------------------------------- */

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

int il_payload_render(il_payload *p, uint32_t dev, uint64_t seq, int64_t t_us,
                      char *out, size_t cap)
{
    const line *ln = (const line *)p->lines.d;
    if (p->nlines > 1) /* (dev + seq) % n, without wrapping at 2^64 */
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
        case P_RAND: s = put_int(te, (uint64_t)pt->lo + draw(&p->rng, pt), 0); break;
        case P_RANDF: s = put_int(te, (uint64_t)pt->lo + draw(&p->rng, pt), 1); break;
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
    free(p->text), free(p->parts.d), free(p->words.d), free(p->lines.d);
    free(p);
}
