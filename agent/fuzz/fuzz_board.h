/*
 * fuzz_board.h - a fake board for the fuzz targets: records in RAM with the HAL's size limits,
 * a device key that is a flag and fixed bytes (no cryptography: the fuzzer explores the
 * agent's parsing and state, not mbedTLS), a TPM that echoes, every answer frame captured,
 * and a count of the calls that change the board (to prove a replay executes nothing).
 */
#ifndef FUZZ_BOARD_H
#define FUZZ_BOARD_H

#include "station_agent.h"

#define FUZZ_MAX_FRAMES 64u

typedef struct fuzz_board {
    agent_hal_t hal;
    uint8_t records[AGENT_REC_COUNT][AGENT_RECORD_MAX];
    size_t record_len[AGENT_REC_COUNT];
    int record_set[AGENT_REC_COUNT];
    int has_key;
    uint32_t changes; /* store_write, store_erase, key_generate, key_import, key_destroy */
    uint32_t resets;
    /* the frames handed to uart_write (one per call), up to FUZZ_MAX_FRAMES */
    uint8_t frame[FUZZ_MAX_FRAMES][AGENT_MAX_ENCODED + 2u];
    size_t frame_len[FUZZ_MAX_FRAMES];
    size_t frames;
} fuzz_board_t;

/* A factory-fresh board with capabilities caps (AGENT_CAP_*). */
void fuzz_board_init(fuzz_board_t *board, uint32_t caps);

#endif
