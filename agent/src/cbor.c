/*
 * cbor.c - reader and writer for the protocol's CBOR subset (RFC 8949, definite lengths).
 */
#include "cbor.h"

#include <string.h>

static int utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t need;
        uint32_t cp;
        uint32_t min;
        size_t k;
        if (c < 0x80u) {
            i++;
            continue;
        }
        if ((c & 0xE0u) == 0xC0u) {
            need = 1;
            cp = c & 0x1Fu;
            min = 0x80u;
        } else if ((c & 0xF0u) == 0xE0u) {
            need = 2;
            cp = c & 0x0Fu;
            min = 0x800u;
        } else if ((c & 0xF8u) == 0xF0u) {
            need = 3;
            cp = c & 0x07u;
            min = 0x10000u;
        } else {
            return 0;
        }
        if (len - i <= need) {
            return 0;
        }
        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0u) != 0x80u) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        /* overlong forms, UTF-16 surrogates and values beyond U+10FFFF are not UTF-8 */
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) {
            return 0;
        }
        i += need + 1;
    }
    return 1;
}

size_t cbor_utf8_chars(const uint8_t *s, size_t len)
{
    size_t count = 0;
    size_t i;
    for (i = 0; i < len; i++) {
        if ((s[i] & 0xC0u) != 0x80u) {
            count++;
        }
    }
    return count;
}

int cbor_text_is(const cbor_item_t *item, const char *s)
{
    size_t n = strlen(s);
    return item->major == CBOR_TEXT && item->arg == n && memcmp(item->data, s, n) == 0;
}

int cbor_read_head(cbor_reader_t *r, cbor_item_t *item)
{
    uint8_t initial;
    uint8_t info;
    uint64_t arg = 0;
    size_t extra;
    size_t i;
    if (r->p >= r->end) {
        return -1;
    }
    initial = *r->p++;
    item->major = initial >> 5;
    info = initial & 0x1Fu;
    item->data = NULL;
    if (info < 24u) {
        arg = info;
        extra = 0;
    } else if (info <= 27u) {
        extra = (size_t)1u << (info - 24u);
    } else {
        return -1; /* 28-30 reserved, 31 indefinite length or break */
    }
    if ((size_t)(r->end - r->p) < extra) {
        return -1;
    }
    for (i = 0; i < extra; i++) {
        arg = (arg << 8) | *r->p++;
    }
    item->arg = arg;
    switch (item->major) {
    case CBOR_UINT:
    case CBOR_NINT:
    case CBOR_ARRAY:
    case CBOR_MAP:
        return 0;
    case CBOR_BYTES:
    case CBOR_TEXT:
        if ((uint64_t)(r->end - r->p) < arg) {
            return -1;
        }
        item->data = r->p;
        r->p += (size_t)arg;
        if (item->major == CBOR_TEXT && !utf8_valid(item->data, (size_t)arg)) {
            return -1;
        }
        return 0;
    case CBOR_SIMPLE:
        /* false, true, null only: no undefined, no other simple values, no floats */
        return (extra == 0 && arg >= CBOR_FALSE && arg <= CBOR_NULL) ? 0 : -1;
    default:
        return -1; /* tags */
    }
}

/* One walk over nested data: its limits and the items seen so far. */
typedef struct walk {
    const cbor_limits_t *limits;
    uint32_t items;
} walk_t;

static int walk_rest(cbor_reader_t *r, const cbor_item_t *item, unsigned depth, walk_t *walk);

static int walk_item(cbor_reader_t *r, unsigned depth, walk_t *walk, int is_key)
{
    cbor_item_t item;
    if (cbor_read_head(r, &item) != 0) {
        return -1;
    }
    walk->items++;
    if (walk->limits->max_total != 0 && walk->items > walk->limits->max_total) {
        return -1;
    }
    if (is_key) {
        if (walk->limits->text_keys && item.major != CBOR_TEXT) {
            return -1;
        }
        if (item.major == CBOR_ARRAY || item.major == CBOR_MAP) {
            return -1; /* a container cannot be a key of the maps we read */
        }
    }
    return walk_rest(r, &item, depth, walk);
}

static int walk_rest(cbor_reader_t *r, const cbor_item_t *item, unsigned depth, walk_t *walk)
{
    uint64_t i;
    if (depth > walk->limits->max_depth) {
        return -1;
    }
    if (item->major != CBOR_ARRAY && item->major != CBOR_MAP) {
        return 0;
    }
    if (item->arg > walk->limits->max_items) {
        return -1;
    }
    /* every entry takes at least one byte: a count beyond the input is truncated data */
    if (item->arg > (uint64_t)(r->end - r->p)) {
        return -1;
    }
    for (i = 0; i < item->arg; i++) {
        if (item->major == CBOR_MAP && walk_item(r, depth + 1u, walk, 1) != 0) {
            return -1;
        }
        if (walk_item(r, depth + 1u, walk, 0) != 0) {
            return -1;
        }
    }
    return 0;
}

int cbor_skip_rest(cbor_reader_t *r, const cbor_item_t *item, unsigned depth,
                   const cbor_limits_t *limits)
{
    walk_t walk;
    walk.limits = limits;
    walk.items = 1; /* the item whose head the caller read */
    return walk_rest(r, item, depth, &walk);
}

int cbor_check(const uint8_t *buf, size_t len, const cbor_limits_t *limits)
{
    cbor_reader_t r;
    walk_t walk;
    r.p = buf;
    r.end = buf + len;
    walk.limits = limits;
    walk.items = 0;
    if (walk_item(&r, 0, &walk, 0) != 0) {
        return -1;
    }
    return r.p == r.end ? 0 : -1;
}

void cbor_writer_init(cbor_writer_t *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = 0;
}

static void put_raw(cbor_writer_t *w, const uint8_t *data, size_t len)
{
    if (w->overflow || w->cap - w->len < len) {
        w->overflow = 1;
        return;
    }
    if (len > 0) {
        memcpy(w->buf + w->len, data, len);
    }
    w->len += len;
}

void cbor_put_head(cbor_writer_t *w, int major, uint64_t arg)
{
    uint8_t head[9];
    size_t n;
    size_t i;
    uint8_t top = (uint8_t)(major << 5);
    if (arg < 24u) {
        head[0] = (uint8_t)(top | arg);
        n = 1;
    } else {
        size_t width = arg <= 0xFFu ? 1 : arg <= 0xFFFFu ? 2 : arg <= 0xFFFFFFFFu ? 4 : 8;
        head[0] = (uint8_t)(top | (width == 1 ? 24u : width == 2 ? 25u : width == 4 ? 26u : 27u));
        for (i = 0; i < width; i++) {
            head[1 + i] = (uint8_t)(arg >> (8u * (width - 1u - i)));
        }
        n = 1 + width;
    }
    put_raw(w, head, n);
}

void cbor_put_uint(cbor_writer_t *w, uint64_t value)
{
    cbor_put_head(w, CBOR_UINT, value);
}

void cbor_put_bool(cbor_writer_t *w, int value)
{
    uint8_t byte = (uint8_t)(0xE0u | (value ? CBOR_TRUE : CBOR_FALSE));
    put_raw(w, &byte, 1);
}

void cbor_put_text(cbor_writer_t *w, const char *s, size_t len)
{
    cbor_put_head(w, CBOR_TEXT, len);
    put_raw(w, (const uint8_t *)s, len);
}

void cbor_put_cstr(cbor_writer_t *w, const char *s)
{
    cbor_put_text(w, s, strlen(s));
}

void cbor_put_bytes(cbor_writer_t *w, const uint8_t *data, size_t len)
{
    cbor_put_head(w, CBOR_BYTES, len);
    put_raw(w, data, len);
}

uint8_t *cbor_put_bytes_slot(cbor_writer_t *w, size_t len)
{
    uint8_t *slot;
    cbor_put_head(w, CBOR_BYTES, len);
    if (w->overflow || w->cap - w->len < len) {
        w->overflow = 1;
        return NULL;
    }
    slot = w->buf + w->len;
    w->len += len;
    return slot;
}
