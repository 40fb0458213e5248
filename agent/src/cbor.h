/*
 * cbor.h - the CBOR subset of the board protocol (section 3): integers, byte and text strings,
 * arrays, maps, true/false/null, definite lengths only. No tags, no floats, no undefined.
 */
#ifndef AGENT_CBOR_H
#define AGENT_CBOR_H

#include <stddef.h>
#include <stdint.h>

enum cbor_major {
    CBOR_UINT = 0,
    CBOR_NINT = 1,
    CBOR_BYTES = 2,
    CBOR_TEXT = 3,
    CBOR_ARRAY = 4,
    CBOR_MAP = 5,
    CBOR_SIMPLE = 7 /* arg: 20 false, 21 true, 22 null */
};

#define CBOR_FALSE 20u
#define CBOR_TRUE 21u
#define CBOR_NULL 22u

typedef struct cbor_reader {
    const uint8_t *p;
    const uint8_t *end;
} cbor_reader_t;

typedef struct cbor_item {
    int major;
    uint64_t arg;        /* value, length, item count or simple value */
    const uint8_t *data; /* content of a byte or text string */
} cbor_item_t;

/* Limits of one walk over nested data. */
typedef struct cbor_limits {
    unsigned max_depth; /* containers deeper than this below the first item are refused */
    uint64_t max_items; /* entries of any array or map */
    int text_keys;      /* 1: every map key must be a text string */
    uint32_t max_total; /* items of any kind (keys, values, container heads); 0 = no limit */
} cbor_limits_t;

/* Read one head (and the content of a string, which for text must be valid UTF-8).
 * Returns 0, or -1 for anything outside the subset or truncated. */
int cbor_read_head(cbor_reader_t *r, cbor_item_t *item);

/* Check and skip one complete item whose head is already read; depth is the item's level. */
int cbor_skip_rest(cbor_reader_t *r, const cbor_item_t *item, unsigned depth,
                   const cbor_limits_t *limits);

/* Check that buf holds exactly one item within limits. */
int cbor_check(const uint8_t *buf, size_t len, const cbor_limits_t *limits);

/* Number of characters (code points) in valid UTF-8. */
size_t cbor_utf8_chars(const uint8_t *s, size_t len);

/* Whether the text item equals the NUL-terminated string s. */
int cbor_text_is(const cbor_item_t *item, const char *s);

typedef struct cbor_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int overflow; /* set once something did not fit; the content is then unusable */
} cbor_writer_t;

void cbor_writer_init(cbor_writer_t *w, uint8_t *buf, size_t cap);
void cbor_put_head(cbor_writer_t *w, int major, uint64_t arg);
void cbor_put_uint(cbor_writer_t *w, uint64_t value);
void cbor_put_bool(cbor_writer_t *w, int value);
void cbor_put_text(cbor_writer_t *w, const char *s, size_t len);
void cbor_put_cstr(cbor_writer_t *w, const char *s);
void cbor_put_bytes(cbor_writer_t *w, const uint8_t *data, size_t len);
/* Room for a byte string of len bytes: writes the head, returns where the content goes. */
uint8_t *cbor_put_bytes_slot(cbor_writer_t *w, size_t len);

#endif /* AGENT_CBOR_H */
