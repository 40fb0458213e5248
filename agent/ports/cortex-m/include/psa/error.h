/*
 * psa/error.h - for mbedTLS's psa_crypto_storage.c built without MBEDTLS_PSA_ITS_FILE_C: it
 * then expects the platform's native ITS headers (as Trusted Firmware-M provides them). The
 * status codes themselves come with psa/crypto.h.
 */
#ifndef AGENT_CM_PSA_ERROR_H
#define AGENT_CM_PSA_ERROR_H

#include "psa/crypto.h"

#endif
