/*
 * envelope.c - encoding and decoding of the iotlat measurement envelope.
 *
 * Every latency sample starts here: the subscriber has to find the
 * publisher, device, sequence number and timestamps inside each message, at
 * more than a million messages per second, in messages that crossed brokers
 * and transformers we do not control.  JSON is therefore decoded in one
 * hand-written pass that builds no tree: it walks the top-level object,
 * parses only the "iotlat" member (or the old tool's "lastUpdated"), and
 * merely checks the structure of everything else while skipping over it.
 * The same pass notes where the envelope sits in the text, so that a
 * transformer can add a hop stamp while copying the user's keys byte for
 * byte.  The binary encoding is a fixed little-endian header.  All input is
 * hostile: every read is bounded by the given length, nesting is limited,
 * and nothing recurses.
 */
#include "envelope.h"

#include <limits.h>
#include <string.h>

#define MAX_DEPTH 64      /* nesting allowed inside a skipped value */
#define ENV_JSON_MAX 512  /* the longest envelope text is about 360 bytes */
#define EPOCH_DAYS 719528 /* days from 0000-01-01 to 1970-01-01 */
#define US_PER_DAY 86400000000LL
#define BIN_MAX_DEVICES 0xFFFFFFu /* devices travel in 24 reserved bits */

#define DIGIT(c) ((unsigned)((c) - '0') <= 9u)

/* ---- JSON scanning ---------------------------------------------------- */

static const uint8_t *ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static const uint8_t *literal(const uint8_t *p, const uint8_t *end,
                              const char *word, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, word, n) == 0 ? p + n : NULL;
}

static int is_hex(uint8_t c)
{
    return DIGIT(c) || (unsigned)((c | 0x20) - 'a') <= 5u;
}

/* Skips a string starting at its opening quote.  Escapes and control
 * characters are checked because a message that is not JSON must not be
 * mistaken for one; UTF-8 is not validated, since no field we read can
 * contain anything but ASCII and checking would cost every message. */
static const uint8_t *skip_string(const uint8_t *p, const uint8_t *end)
{
    for (p++; p < end; p++) {
        if (*p == '"')
            return p + 1;
        if (*p < 0x20)
            return NULL;
        if (*p != '\\')
            continue;
        if (++p == end)
            return NULL;
        if (*p == 'u') {
            if (end - p < 5 || !is_hex(p[1]) || !is_hex(p[2]) ||
                !is_hex(p[3]) || !is_hex(p[4]))
                return NULL;
            p += 4;
        } else if (!memchr("\"\\/bfnrt", *p, 8)) {
            return NULL;
        }
    }
    return NULL;
}

static const uint8_t *skip_digits(const uint8_t *p, const uint8_t *end)
{
    while (p < end && DIGIT(*p))
        p++;
    return p;
}

/* Skips a number following the JSON grammar.  What may follow it is left to
 * the enclosing container, which accepts only a separator or its closer, so
 * "01" or "1x" fail there. */
static const uint8_t *skip_number(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *q;
    if (p < end && *p == '-')
        p++;
    if (p == end || !DIGIT(*p))
        return NULL;
    p = *p == '0' ? p + 1 : skip_digits(p, end);
    if (p < end && *p == '.') {
        if ((q = skip_digits(p + 1, end)) == p + 1)
            return NULL;
        p = q;
    }
    if (p < end && (*p | 0x20) == 'e') {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if ((q = skip_digits(p, end)) == p)
            return NULL;
        p = q;
    }
    return p;
}

/* Consumes `"key" :` and the whitespace after it, and returns the start of
 * the member's value, which is then known to lie before `end`. */
static const uint8_t *member_key(const uint8_t *p, const uint8_t *end,
                                 const uint8_t **key, size_t *klen)
{
    const uint8_t *q;
    if (p == end || *p != '"' || !(q = skip_string(p, end)))
        return NULL;
    *key = p + 1;
    *klen = (size_t)(q - p - 2);
    p = ws(q, end);
    if (p == end || *p != ':' || (p = ws(p + 1, end)) == end)
        return NULL;
    return p;
}

/* Steps over what follows a value in a container: a ',' and the whitespace
 * after it (*closed = 0), or the container's closer (*closed = 1).  It runs
 * after every value, and inlining it keeps `closed` out of memory. */
static inline const uint8_t *after_value(const uint8_t *p, const uint8_t *end,
                                         uint8_t closer, int *closed)
{
    if (!p || (p = ws(p, end)) == end)
        return NULL;
    if ((*closed = *p == closer))
        return p + 1;
    return *p == ',' ? ws(p + 1, end) : NULL;
}

/* Skips one value of any kind.  Open containers are remembered as one bit
 * per level in `objs` (set for an object) rather than by recursion, which
 * caps nesting at MAX_DEPTH with no stack use at all. */
static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end)
{
    uint64_t objs = 0;
    int depth = 0, closed;
    const uint8_t *k;
    size_t kn;
    for (;;) {
        /* Here p is at the start of a value, or at the end of the input. */
        if (p == end)
            return NULL;
        if (*p == '{' || *p == '[') {
            if (depth++ == MAX_DEPTH)
                return NULL;
            objs = objs << 1 | (*p == '{');
            p = ws(p + 1, end);
            if (p == end || *p != ((objs & 1) ? '}' : ']')) {
                if ((objs & 1) && !(p = member_key(p, end, &k, &kn)))
                    return NULL;
                continue;
            }
            p++, depth--, objs >>= 1; /* an empty container */
        } else if (*p == '"') {
            p = skip_string(p, end);
        } else if (*p == 't') {
            p = literal(p, end, "true", 4);
        } else if (*p == 'f') {
            p = literal(p, end, "false", 5);
        } else if (*p == 'n') {
            p = literal(p, end, "null", 4);
        } else {
            p = skip_number(p, end);
        }
        /* A value ended: close containers until one has a next element. */
        for (;;) {
            if (!p || depth == 0)
                return p;
            p = after_value(p, end, (objs & 1) ? '}' : ']', &closed);
            if (!p || !closed)
                break;
            depth--, objs >>= 1;
        }
        if (p && (objs & 1))
            p = member_key(p, end, &k, &kn);
        if (!p)
            return NULL;
    }
}

/* ---- the "iotlat" object ---------------------------------------------- */

/* Reads an integer as sign and magnitude, rejecting magnitudes beyond
 * uint64.  Fractions and exponents need no check here: the '.' or 'e' that
 * would follow is not a separator, so the caller rejects it. */
static const uint8_t *parse_int(const uint8_t *p, const uint8_t *end,
                                int *neg, uint64_t *mag)
{
    const uint8_t *s;
    uint64_t v = 0;
    unsigned d;
    *neg = p < end && *p == '-';
    p += *neg;
    if (p == end || !DIGIT(*p))
        return NULL;
    if (*p == '0') {
        *mag = 0;
        return p + 1;
    }
    s = p;
    /* Digits go in pairs, which halves the chain of dependent multiplies.
     * Nineteen digits always fit; from the twentieth on each is checked
     * (a twenty-first always fails the check). */
    while (end - p >= 2 && p - s <= 16 && DIGIT(p[0]) && DIGIT(p[1])) {
        v = v * 100 + (unsigned)(p[0] - '0') * 10 + (unsigned)(p[1] - '0');
        p += 2;
    }
    for (; p < end && (d = (unsigned)(*p - '0')) <= 9; p++) {
        if (p - s >= 19 && v > (UINT64_MAX - d) / 10)
            return NULL;
        v = v * 10 + d;
    }
    *mag = v;
    return p;
}

static const uint8_t *parse_u(const uint8_t *p, const uint8_t *end,
                              uint64_t max, uint64_t *out)
{
    int neg;
    p = parse_int(p, end, &neg, out);
    return p && !neg && *out <= max ? p : NULL;
}

static const uint8_t *parse_i(const uint8_t *p, const uint8_t *end,
                              int64_t *out)
{
    int neg;
    uint64_t m;
    p = parse_int(p, end, &neg, &m);
    if (!p || m > (uint64_t)INT64_MAX + (unsigned)neg)
        return NULL;
    /* Negating via m - 1 keeps INT64_MIN free of overflow. */
    *out = neg && m ? -(int64_t)(m - 1) - 1 : (int64_t)m;
    return p;
}

static const uint8_t *parse_hops(const uint8_t *p, const uint8_t *end,
                                 il_env *e)
{
    int closed = 0;
    if (*p != '[')
        return NULL;
    p = ws(p + 1, end);
    if (p < end && *p == ']')
        return p + 1;
    while (p && !closed) {
        if (e->nhops == IL_ENV_MAX_HOPS)
            return NULL;
        p = parse_i(p, end, &e->t_hop[e->nhops++]);
        p = after_value(p, end, ']', &closed);
    }
    return p;
}

enum { F_V, F_PUB, F_DEV, F_SEQ, F_TI, F_TS, F_HOP, F_FIN, F_DEVICES, F_N };
#define REQUIRED ((1u << F_V) | (1u << F_PUB) | (1u << F_DEV) | \
                  (1u << F_SEQ) | (1u << F_TI) | (1u << F_TS))

/* Identifies an envelope key.  Comparing against constant lengths lets the
 * compiler inline each memcmp as one or two loads. */
static int field_of(const uint8_t *k, size_t n)
{
#define IS(s) (n == sizeof s - 1 && memcmp(k, s, sizeof s - 1) == 0)
    return IS("v")         ? F_V
         : IS("pub")       ? F_PUB
         : IS("dev")       ? F_DEV
         : IS("seq")       ? F_SEQ
         : IS("t_intended") ? F_TI
         : IS("t_sent")    ? F_TS
         : IS("t_hop")     ? F_HOP
         : IS("fin")       ? F_FIN
         : IS("devices")   ? F_DEVICES
                           : F_N;
#undef IS
}

/* Parses the envelope object starting at its '{' into *e.  A field given
 * twice is rejected rather than guessed at; unknown keys are skipped so that
 * later versions can add fields. */
static const uint8_t *parse_env(const uint8_t *p, const uint8_t *end,
                                il_env *e)
{
    unsigned seen = 0;
    const uint8_t *k, *q;
    size_t kn;
    uint64_t u = 0;
    int f, closed;
    memset(e, 0, sizeof *e);
    p = ws(p + 1, end);
    do {
        if (!(p = member_key(p, end, &k, &kn)))
            return NULL;
        f = field_of(k, kn);
        if (f < F_N && (seen & (1u << f)))
            return NULL;
        seen |= 1u << f;
        switch (f) {
        case F_V:
            p = parse_u(p, end, 1, &u);
            p = u == 1 ? p : NULL;
            break;
        case F_PUB:
        case F_DEV:
        case F_DEVICES:
            p = parse_u(p, end, UINT32_MAX, &u);
            *(f == F_PUB ? &e->pub : f == F_DEV ? &e->dev : &e->devices) =
                (uint32_t)u;
            break;
        case F_SEQ: p = parse_u(p, end, UINT64_MAX, &e->seq); break;
        case F_TI: p = parse_i(p, end, &e->t_intended); break;
        case F_TS: p = parse_i(p, end, &e->t_sent); break;
        case F_HOP: p = parse_hops(p, end, e); break;
        case F_FIN:
            if ((q = literal(p, end, "true", 4)))
                e->flags |= IL_ENV_FIN;
            p = q ? q : literal(p, end, "false", 5);
            break;
        default: p = skip_value(p, end);
        }
    } while ((p = after_value(p, end, '}', &closed)) && !closed);
    if (!(e->flags & IL_ENV_FIN))
        e->devices = 0; /* the count means something on fin markers only */
    return p && (seen & REQUIRED) == REQUIRED ? p : NULL;
}

/* ---- the top-level object --------------------------------------------- */

/* Where the envelope sits, so il_env_add_hop can copy the rest verbatim. */
typedef struct {
    const uint8_t *open;    /* the top-level '{' */
    const uint8_t *before;  /* end of the member before "iotlat", or NULL */
    const uint8_t *env_end; /* just past the envelope object */
} layout;

/* Decodes a JSON message.  The first "iotlat" member is the envelope; a
 * later one is an ordinary user key, which keeps a transformer that copies
 * an old envelope into its new body from overriding the fresh one. */
static int decode_json(const uint8_t *msg, size_t len, il_env *e,
                       layout *lay)
{
    const uint8_t *end = msg + len, *p = ws(msg, end), *prev = NULL;
    const uint8_t *k, *seed = NULL;
    size_t kn, seed_len = 0;
    int found = 0, closed;
    if (p == end || *p != '{')
        return IL_ENV_EMALFORMED;
    lay->open = p;
    p = ws(p + 1, end);
    do {
        if (!(p = member_key(p, end, &k, &kn)))
            return IL_ENV_EMALFORMED;
        if (!found && kn == 6 && memcmp(k, "iotlat", 6) == 0) {
            if (*p != '{' || !(p = parse_env(p, end, e)))
                return IL_ENV_EMALFORMED;
            found = 1;
            lay->before = prev;
            lay->env_end = p;
        } else if (!seed && kn == 11 && memcmp(k, "lastUpdated", 11) == 0 &&
                   *p == '"') {
            seed = p + 1;
            if ((p = skip_string(p, end)))
                seed_len = (size_t)(p - 1 - seed);
        } else {
            p = skip_value(p, end);
        }
        prev = p;
    } while ((p = after_value(p, end, '}', &closed)) && !closed);
    if (!p || ws(p, end) != end)
        return IL_ENV_EMALFORMED; /* broken, or something follows */
    if (found)
        return 0;
    memset(e, 0, sizeof *e);
    if (!seed ||
        il_env_parse_iso8601((const char *)seed, seed_len, &e->t_intended))
        return IL_ENV_EMALFORMED;
    e->t_sent = e->t_intended;
    e->flags = IL_ENV_SEED;
    return 0;
}

/* ---- JSON output ------------------------------------------------------ */

static uint8_t *put(uint8_t *w, const char *s, size_t n)
{
    memcpy(w, s, n);
    return w + n;
}
#define PUT(w, lit) put(w, lit, sizeof lit - 1)

/* Formats right to left, two digits per 64-bit division, which is what
 * makes it several times faster than snprintf. */
static uint8_t *put_u64(uint8_t *w, uint64_t v)
{
    uint8_t tmp[20], *t = tmp + sizeof tmp;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        *--t = (uint8_t)('0' + r % 10);
        *--t = (uint8_t)('0' + r / 10);
    }
    if (v >= 10)
        *--t = (uint8_t)('0' + v % 10), v /= 10;
    *--t = (uint8_t)('0' + v);
    return put(w, (const char *)t, (size_t)(tmp + sizeof tmp - t));
}

static uint8_t *put_i64(uint8_t *w, int64_t v)
{
    if (v >= 0)
        return put_u64(w, (uint64_t)v);
    *w++ = '-';
    return put_u64(w, 0 - (uint64_t)v);
}

/* Writes `{"iotlat":{...}` (the outer object left open) into w, which holds
 * at least ENV_JSON_MAX bytes, and returns its length. */
static size_t env_json(const il_env *e, uint8_t *w0)
{
    uint8_t *w = PUT(w0, "{\"iotlat\":{\"v\":1,\"pub\":");
    w = put_u64(w, e->pub);
    w = put_u64(PUT(w, ",\"dev\":"), e->dev);
    w = put_u64(PUT(w, ",\"seq\":"), e->seq);
    w = put_i64(PUT(w, ",\"t_intended\":"), e->t_intended);
    w = put_i64(PUT(w, ",\"t_sent\":"), e->t_sent);
    if (e->nhops) {
        w = PUT(w, ",\"t_hop\":[");
        for (uint32_t i = 0; i < e->nhops; i++) {
            if (i)
                *w++ = ',';
            w = put_i64(w, e->t_hop[i]);
        }
        *w++ = ']';
    }
    if (e->flags & IL_ENV_FIN)
        w = put_u64(PUT(w, ",\"fin\":true,\"devices\":"), e->devices);
    *w++ = '}';
    return (size_t)(w - w0);
}

/* Writes the envelope, then `sep` if non-zero, then two pieces of the user
 * object's text.  Both encoding and hop stamping reduce to this. */
static int emit_json(const il_env *e, char sep, const uint8_t *a, size_t an,
                     const uint8_t *b, size_t bn, uint8_t *out, size_t cap)
{
    uint8_t env[ENV_JSON_MAX];
    size_t n, total;
    if (e->nhops > IL_ENV_MAX_HOPS)
        return IL_ENV_EMALFORMED;
    n = env_json(e, env);
    total = n + (sep != 0) + an + bn;
    if (total > cap || total > INT_MAX)
        return IL_ENV_ENOSPC;
    memcpy(out, env, n);
    if (sep)
        out[n++] = (uint8_t)sep;
    if (an)
        memcpy(out + n, a, an);
    if (bn)
        memcpy(out + n + an, b, bn);
    return (int)total;
}

/* ---- binary ------------------------------------------------------------ */

/* The format is little-endian whatever the host.  On little-endian hosts a
 * memcpy of the low n bytes is that already and compiles to plain loads and
 * stores, which the byte loops of the portable path do not reliably do. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_LE 1
#else
#define HOST_LE 0
#endif

static void put_le(uint8_t *w, uint64_t v, int n)
{
    if (HOST_LE)
        memcpy(w, &v, (size_t)n);
    else
        for (int i = 0; i < n; i++)
            w[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *r, int n)
{
    uint64_t v = 0;
    if (HOST_LE)
        memcpy(&v, r, (size_t)n);
    else
        while (n-- > 0)
            v = v << 8 | r[n];
    return v;
}

static int is_binary(const uint8_t *msg, size_t len)
{
    return len >= 3 && msg[0] == 'I' && msg[1] == 'L' && msg[2] == 1;
}

/* The reserved bytes 5..7 carry `devices` on fin markers and must be zero
 * otherwise; unknown flag bits are rejected so that they can be given a
 * meaning later without old subscribers misreading them. */
static int decode_bin(const uint8_t *msg, size_t len, il_env *e, size_t *off)
{
    unsigned nh;
    if (len < IL_ENV_BIN_HEADER || (msg[3] & ~IL_ENV_FIN) ||
        (nh = msg[4]) > IL_ENV_MAX_HOPS ||
        len < IL_ENV_BIN_HEADER + 8u * nh)
        return IL_ENV_EMALFORMED;
    e->flags = msg[3];
    e->devices = (uint32_t)get_le(msg + 5, 3);
    if (e->devices && !(e->flags & IL_ENV_FIN))
        return IL_ENV_EMALFORMED;
    e->pub = (uint32_t)get_le(msg + 8, 4);
    e->dev = (uint32_t)get_le(msg + 12, 4);
    e->seq = get_le(msg + 16, 8);
    e->t_intended = (int64_t)get_le(msg + 24, 8);
    e->t_sent = (int64_t)get_le(msg + 32, 8);
    e->nhops = nh;
    /* Every field is assigned, unused stamps too, which is cheaper than
     * clearing the whole struct first. */
    for (unsigned i = 0; i < IL_ENV_MAX_HOPS; i++)
        e->t_hop[i] =
            i < nh ? (int64_t)get_le(msg + IL_ENV_BIN_HEADER + 8 * i, 8) : 0;
    *off = IL_ENV_BIN_HEADER + 8u * nh;
    return 0;
}

static int encode_bin(const il_env *e, const void *body, size_t body_len,
                      uint8_t *out, size_t cap)
{
    int fin = (e->flags & IL_ENV_FIN) != 0;
    size_t hl = IL_ENV_BIN_HEADER + 8u * e->nhops;
    if (e->nhops > IL_ENV_MAX_HOPS || (fin && e->devices > BIN_MAX_DEVICES))
        return IL_ENV_EMALFORMED;
    if (body_len > cap || hl > cap - body_len || hl + body_len > INT_MAX)
        return IL_ENV_ENOSPC;
    out[0] = 'I', out[1] = 'L', out[2] = 1;
    out[3] = (uint8_t)fin;
    out[4] = (uint8_t)e->nhops;
    put_le(out + 5, fin ? e->devices : 0, 3);
    put_le(out + 8, e->pub, 4);
    put_le(out + 12, e->dev, 4);
    put_le(out + 16, e->seq, 8);
    put_le(out + 24, (uint64_t)e->t_intended, 8);
    put_le(out + 32, (uint64_t)e->t_sent, 8);
    for (uint32_t i = 0; i < e->nhops; i++)
        put_le(out + IL_ENV_BIN_HEADER + 8 * i, (uint64_t)e->t_hop[i], 8);
    if (body_len)
        memcpy(out + hl, body, body_len);
    return (int)(hl + body_len);
}

/* ---- public API --------------------------------------------------------- */

int il_env_encode(il_encoding enc, const il_env *e, const char *body,
                  size_t body_len, uint8_t *out, size_t cap)
{
    const uint8_t *b = (const uint8_t *)body, *end, *p, *q;
    if (enc == IL_ENC_BINARY)
        return encode_bin(e, body, body_len, out, cap);
    /* The body is trusted to be an object; only its braces are looked at,
     * to splice the envelope in as the first member. */
    p = body ? ws(b, b + body_len) : NULL;
    if (!p || p == b + body_len)
        return emit_json(e, 0, (const uint8_t *)"}", 1, NULL, 0, out, cap);
    end = b + body_len;
    if (*p != '{' || (q = ws(p + 1, end)) == end)
        return IL_ENV_EMALFORMED;
    if (*q == '}')
        return emit_json(e, 0, q, 1, NULL, 0, out, cap);
    return emit_json(e, ',', p + 1, (size_t)(end - p - 1), NULL, 0, out, cap);
}

int il_env_decode(const uint8_t *msg, size_t len, il_env *e,
                  const uint8_t **body, size_t *body_len)
{
    layout lay;
    size_t off = 0;
    int rc;
    if (!msg)
        return IL_ENV_EMALFORMED;
    rc = is_binary(msg, len) ? decode_bin(msg, len, e, &off)
                             : decode_json(msg, len, e, &lay);
    if (rc)
        return IL_ENV_EMALFORMED;
    if (body)
        *body = msg + off;
    if (body_len)
        *body_len = len - off;
    return 0;
}

/* The output must not overlap msg.  Unknown keys inside the envelope are
 * not carried over: they have no field in il_env to survive in. */
int il_env_add_hop(const uint8_t *msg, size_t len, int64_t t_hop,
                   const char *new_body, size_t new_body_len, uint8_t *out,
                   size_t cap)
{
    il_env e;
    layout lay;
    size_t off;
    const uint8_t *end;
    if (!msg)
        return IL_ENV_EMALFORMED;
    end = msg + len;
    if (is_binary(msg, len)) {
        if (decode_bin(msg, len, &e, &off) || e.nhops == IL_ENV_MAX_HOPS)
            return IL_ENV_EMALFORMED;
        e.t_hop[e.nhops++] = t_hop;
        if (new_body)
            return encode_bin(&e, new_body, new_body_len, out, cap);
        return encode_bin(&e, msg + off, len - off, out, cap);
    }
    if (decode_json(msg, len, &e, &lay) || (e.flags & IL_ENV_SEED) ||
        e.nhops == IL_ENV_MAX_HOPS)
        return IL_ENV_EMALFORMED;
    e.t_hop[e.nhops++] = t_hop;
    if (new_body)
        return il_env_encode(IL_ENC_JSON, &e, new_body, new_body_len, out,
                             cap);
    /* If the envelope was the first member, what follows it (",..." or
     * "}") continues the new one as it is.  Otherwise the members before it
     * move behind the new envelope, and the comma that separated them from
     * the old one is dropped, leaving the one that follows it. */
    if (!lay.before)
        return emit_json(&e, 0, lay.env_end, (size_t)(end - lay.env_end),
                         NULL, 0, out, cap);
    return emit_json(&e, ',', lay.open + 1,
                     (size_t)(lay.before - lay.open - 1), lay.env_end,
                     (size_t)(end - lay.env_end), out, cap);
}

/* ---- ISO-8601 ---------------------------------------------------------- */

static const uint16_t month_start[12] = {0,   31,  59,  90,  120, 151,
                                         181, 212, 243, 273, 304, 334};
static const uint8_t month_days[12] = {31, 28, 31, 30, 31, 30,
                                       31, 31, 30, 31, 30, 31};

static int leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 0000-01-01 to January 1st of year y >= 0: 365 per year plus one
 * per leap year before y.  Year 0 is a leap year, and the rounded-up
 * quotients count the multiples of 4, 100 and 400 in [0, y). */
static int64_t year_days(int64_t y)
{
    return 365 * y + (y + 3) / 4 - (y + 99) / 100 + (y + 399) / 400;
}

/* Reads n decimal digits, or returns -1 if any is not a digit. */
static int num(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!DIGIT(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int il_env_parse_iso8601(const char *s, size_t len, int64_t *out_us)
{
    int y, mo, d, h, mi, sec, off = 0;
    int64_t us = 0, days;
    size_t i = 19, n = 0;
    if (!s || len < 19 || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
        return IL_ENV_EMALFORMED;
    y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2);
    h = num(s + 11, 2), mi = num(s + 14, 2), sec = num(s + 17, 2);
    if (i < len && s[i] == '.') {
        /* Digits past the sixth are read but truncated away. */
        for (i++; i < len && DIGIT(s[i]); i++, n++)
            if (n < 6)
                us = us * 10 + (s[i] - '0');
        if (n == 0 || n > 9)
            return IL_ENV_EMALFORMED;
        for (; n < 6; n++)
            us *= 10;
    }
    if (i < len && s[i] == 'Z') {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (len - i < 6 || s[i + 3] != ':' ||
            (oh = num(s + i + 1, 2)) < 0 || oh > 23 ||
            (om = num(s + i + 4, 2)) < 0 || om > 59)
            return IL_ENV_EMALFORMED;
        off = (s[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
        i += 6;
    }
    if (i != len || y < 0 || mo < 1 || mo > 12 || d < 1 ||
        d > month_days[mo - 1] + (mo == 2 && leap(y)) || h < 0 || h > 23 ||
        mi < 0 || mi > 59 || sec < 0 || sec > 60)
        return IL_ENV_EMALFORMED;
    days = year_days(y) + month_start[mo - 1] + (mo > 2 && leap(y)) + d - 1 -
           EPOCH_DAYS;
    /* A leap second (60) simply lands on the next minute's first second. */
    *out_us = ((days * 86400 + h * 3600 + mi * 60 + sec) - off) * 1000000 + us;
    return 0;
}

static void put_num(char *w, int64_t v, int n)
{
    while (n-- > 0)
        w[n] = (char)('0' + v % 10), v /= 10;
}

/* Only years 0000..9999 fit the fixed four-digit format; other times are
 * refused rather than written in a form the parser would not accept. */
int il_env_format_iso8601(int64_t us, char *out, size_t cap)
{
    int64_t days = us / US_PER_DAY, rem = us % US_PER_DAY, z, y, doy;
    int m = 11;
    if (!out || cap < 28)
        return IL_ENV_ENOSPC;
    if (rem < 0) /* round towards minus infinity for times before 1970 */
        rem += US_PER_DAY, days--;
    z = days + EPOCH_DAYS;
    if (z < 0 || z >= year_days(10000))
        return IL_ENV_EMALFORMED;
    /* 146097 days make 400 years; the loops correct the estimate. */
    y = z * 400 / 146097;
    while (year_days(y) > z)
        y--;
    while (year_days(y + 1) <= z)
        y++;
    doy = z - year_days(y);
    while (month_start[m] + (m >= 2 && leap(y)) > doy)
        m--;
    memcpy(out, "0000-00-00T00:00:00.000000Z", 28);
    put_num(out, y, 4);
    put_num(out + 5, m + 1, 2);
    put_num(out + 8, doy - month_start[m] - (m >= 2 && leap(y)) + 1, 2);
    put_num(out + 11, rem / 3600000000LL, 2);
    put_num(out + 14, rem / 60000000 % 60, 2);
    put_num(out + 17, rem / 1000000 % 60, 2);
    put_num(out + 20, rem % 1000000, 6);
    return 27;
}

int il_env_device_key(uint32_t dev, char *out)
{
    char tmp[10];
    int n = 0;
    /* Per message on the send path: no snprintf. */
    do
        tmp[n++] = (char)('0' + dev % 10);
    while ((dev /= 10));
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}
