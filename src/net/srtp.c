/*
 * SRTP / SRTCP sessions over libsrtp2 (see srtp.h). libsrtp allows one
 * wildcard-SSRC template per srtp_t, so a session is two srtp_t: "tx" with
 * an ssrc_any_outbound policy and our key, "rx" with an ssrc_any_inbound
 * policy and the peer's key. libsrtp clones a stream from the template the
 * first time it sees an SSRC, so any number of tracks share one session.
 *
 * libsrtp counts lengths in int; every size is checked against
 * SL_SRTP_MAX_PACKET before the cast, so no caller size can wrap it.
 */
#include "net/srtp.h"

#include <pthread.h>
#include <string.h>

#include <srtp2/srtp.h>

#include "base/alloc.h"
#include "sluice/errors.h"

_Static_assert(SL_SRTP_MAX_TRAILER >= SRTP_MAX_TRAILER_LEN + 4,
               "SL_SRTP_MAX_TRAILER must cover libsrtp's trailer and the SRTCP index");

/* Inbound replay window in packets: a second of video at high bitrates, and what aiortc uses. */
#define REPLAY_WINDOW 1024

struct sl_srtp {
    srtp_t tx; /* owned: protects what we send (local key), NULL once split off */
    srtp_t rx; /* owned: checks what the peer sends (remote key), NULL in a split-off tx half */
    size_t overhead; /* RTP tag bytes of the profile */
};

static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;
static srtp_err_status_t g_init_status = srtp_err_status_fail;

/* srtp_init registers libsrtp's ciphers once; it is not itself safe to race. */
static void init_once(void)
{
    g_init_status = srtp_init();
}

/* Fills a policy for one direction; key is borrowed by libsrtp only during srtp_create. */
static int fill_policy(srtp_policy_t *p, int profile, size_t key_len, const uint8_t *key,
                       srtp_ssrc_type_t dir)
{
    memset(p, 0, sizeof *p);
    switch (profile) {
    case SL_SRTP_AES128_CM_SHA1_80:
        if (key_len != SRTP_AES_ICM_128_KEY_LEN_WSALT)
            return SL_EINVAL;
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtcp);
        break;
    case SL_SRTP_AEAD_AES_128_GCM:
        if (key_len != SRTP_AES_GCM_128_KEY_LEN_WSALT)
            return SL_EINVAL;
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtcp);
        break;
    default:
        return SL_EINVAL;
    }
    p->ssrc.type = dir;
    p->key = (unsigned char *)key;
    p->window_size = REPLAY_WINDOW;
    p->allow_repeat_tx = 1;
    p->next = NULL;
    return 0;
}

/* See srtp.h. */
int sl_srtp_new(const sl_srtp_keys_t *keys, sl_srtp_t **out)
{
    *out = NULL;
    if (!keys || keys->key_len > sizeof keys->local_key)
        return SL_EINVAL;
    pthread_once(&g_init_once, init_once);
    if (g_init_status != srtp_err_status_ok)
        return SL_EIO;

    srtp_policy_t tx_pol, rx_pol;
    int rc = fill_policy(&tx_pol, keys->profile, keys->key_len, keys->local_key, ssrc_any_outbound);
    if (rc == 0)
        rc = fill_policy(&rx_pol, keys->profile, keys->key_len, keys->remote_key, ssrc_any_inbound);
    if (rc != 0)
        return rc;

    sl_srtp_t *s = sl_calloc(1, sizeof *s);
    if (!s)
        return SL_ENOMEM;
    s->overhead = keys->profile == SL_SRTP_AEAD_AES_128_GCM ? 16 : 10;
    srtp_err_status_t st = srtp_create(&s->tx, &tx_pol);
    if (st != srtp_err_status_ok) {
        rc = st == srtp_err_status_alloc_fail ? SL_ENOMEM : SL_EIO;
        goto fail;
    }
    st = srtp_create(&s->rx, &rx_pol);
    if (st != srtp_err_status_ok) {
        rc = st == srtp_err_status_alloc_fail ? SL_ENOMEM : SL_EIO;
        goto fail;
    }
    *out = s;
    return 0;

fail:
    sl_srtp_free(s);
    return rc;
}

/*
 * Checks the sizes an outbound call gets and converts the length for
 * libsrtp. min_len is the smallest header of the kind (12 RTP, 8 RTCP).
 */
static int out_len(size_t len, size_t cap, size_t min_len, int *n)
{
    if (len > SL_SRTP_MAX_PACKET || cap < len || cap - len < SL_SRTP_MAX_TRAILER)
        return SL_ETOOBIG;
    if (len < min_len)
        return SL_EINVAL;
    *n = (int)len;
    return 0;
}

/* See srtp.h. */
int sl_srtp_protect(sl_srtp_t *s, uint8_t *pkt, size_t *len, size_t cap)
{
    int n;
    int rc = out_len(*len, cap, 12, &n);
    if (rc != 0)
        return rc;
    if (!s->tx)
        return SL_ECLOSED;
    if (srtp_protect(s->tx, pkt, &n) != srtp_err_status_ok)
        return SL_EPROTO;
    *len = (size_t)n;
    return 0;
}

/* See srtp.h. */
int sl_srtp_protect_rtcp(sl_srtp_t *s, uint8_t *pkt, size_t *len, size_t cap)
{
    int n;
    int rc = out_len(*len, cap, 8, &n);
    if (rc != 0)
        return rc;
    if (!s->tx)
        return SL_ECLOSED;
    if (srtp_protect_rtcp(s->tx, pkt, &n) != srtp_err_status_ok)
        return SL_EPROTO;
    *len = (size_t)n;
    return 0;
}

/* See srtp.h. */
int sl_srtp_unprotect(sl_srtp_t *s, uint8_t *pkt, size_t *len)
{
    if (*len > SL_SRTP_MAX_PACKET + SL_SRTP_MAX_TRAILER)
        return SL_ETOOBIG;
    if (!s->rx)
        return SL_ECLOSED;
    int n = (int)*len;
    if (srtp_unprotect(s->rx, pkt, &n) != srtp_err_status_ok)
        return SL_EPROTO;
    *len = (size_t)n;
    return 0;
}

/* See srtp.h. */
int sl_srtp_unprotect_rtcp(sl_srtp_t *s, uint8_t *pkt, size_t *len)
{
    if (*len > SL_SRTP_MAX_PACKET + SL_SRTP_MAX_TRAILER)
        return SL_ETOOBIG;
    if (!s->rx)
        return SL_ECLOSED;
    int n = (int)*len;
    if (srtp_unprotect_rtcp(s->rx, pkt, &n) != srtp_err_status_ok)
        return SL_EPROTO;
    *len = (size_t)n;
    return 0;
}

/* See srtp.h. The srtp_t moves as is: libsrtp keeps no state shared between sessions. */
int sl_srtp_split_tx(sl_srtp_t *s, sl_srtp_t **tx_out)
{
    *tx_out = NULL;
    if (!s || !s->tx)
        return SL_EINVAL;
    sl_srtp_t *t = sl_calloc(1, sizeof *t);
    if (!t)
        return SL_ENOMEM;
    t->tx = s->tx;
    t->overhead = s->overhead;
    s->tx = NULL;
    *tx_out = t;
    return 0;
}

/* See srtp.h. */
size_t sl_srtp_rtp_overhead(const sl_srtp_t *s) { return s ? s->overhead : 0; }

/* See srtp.h. libsrtp zeroes its key material in srtp_dealloc. */
void sl_srtp_free(sl_srtp_t *s)
{
    if (!s)
        return;
    if (s->tx)
        srtp_dealloc(s->tx);
    if (s->rx)
        srtp_dealloc(s->rx);
    sl_free(s);
}
