/*
 * fake_board.h - a board for the unit tests: records in RAM, a TPM that echoes a canned answer,
 * the device key through PSA (volatile files in the test's folder), frames captured.
 */
#ifndef FAKE_BOARD_H
#define FAKE_BOARD_H

#include "station_agent.h"

typedef struct fake_board {
    agent_hal_t hal;
    uint8_t records[AGENT_REC_COUNT][AGENT_RECORD_MAX];
    size_t record_len[AGENT_REC_COUNT];
    int record_set[AGENT_REC_COUNT];
    uint8_t sent[2 * (AGENT_MAX_ENCODED + 2u)];
    size_t sent_len;
    size_t frames_sent;
    int resets;
    const char *serial;
} fake_board_t;

/* A fresh board with capabilities caps (records empty, device key destroyed). */
void fake_board_init(fake_board_t *board, uint32_t caps);

#endif /* FAKE_BOARD_H */
