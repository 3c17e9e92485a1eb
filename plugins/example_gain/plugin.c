/* example_gain: the reference AERS plugin. One kind, `gain`, with one
 * parameter, gain_db, applied to every channel with a ~5 ms glide so changes
 * never click. Plain C, no dependencies beyond libc/libm.
 *
 * Build with AERS_EXAMPLE_PAD_BYTES=N to embed an N-byte read-only array
 * (the load benchmark pads the module to 1 MiB). */
#include "aers/plugin.h"

#include <math.h>
#include <stdlib.h>

#define MAX_CHANNELS 64u

typedef struct gain_instance {
  uint32_t channels;
  double glide_coeff; /* per-sample one-pole coefficient */
  float current;      /* linear gain now (audio thread) */
  float target;       /* linear gain to glide to (audio thread) */
} gain_instance;

static float db_to_linear(double db) {
  return db <= -120.0 ? 0.0f : (float)pow(10.0, db / 20.0);
}

static const aers_param_descriptor kGainParams[] = {
    {"gain_db", "dB", "gain; -120 dB is silence", -120.0, 24.0, 0.0},
};

/* Non-RT. */
static aers_plugin_instance gain_instantiate(const aers_kind_descriptor* kind,
                                             double sample_rate_hz, uint32_t max_period_frames,
                                             uint32_t channels) {
  (void)kind;
  (void)max_period_frames;
  if (channels == 0 || channels > MAX_CHANNELS || !(sample_rate_hz > 0.0)) return NULL;
  gain_instance* g = calloc(1, sizeof *g);
  if (g == NULL) return NULL;
  g->channels = channels;
  g->glide_coeff = 1.0 - exp(-1.0 / (0.005 * sample_rate_hz));
  g->current = 1.0f;
  g->target = 1.0f;
  return g;
}

/* Non-RT. Jumps to the target: no glide from a previous run. */
static int gain_activate(aers_plugin_instance instance) {
  gain_instance* g = instance;
  g->current = g->target;
  return 0;
}

/* Audio thread. Wait-free, no allocation, no syscalls. */
static void gain_process(aers_plugin_instance instance, const float* const* in, float* const* out,
                         uint32_t frames) {
  gain_instance* g = instance;
  const float target = g->target;
  if (g->current == target) {
    for (uint32_t ch = 0; ch < g->channels; ++ch) {
      const float* x = in[ch];
      float* y = out[ch];
      for (uint32_t n = 0; n < frames; ++n) y[n] = x[n] * target;
    }
    return;
  }
  const float k = (float)g->glide_coeff;
  float cur = g->current;
  for (uint32_t n = 0; n < frames; ++n) {
    cur += k * (target - cur);
    if (fabsf(target - cur) < 1e-6f) cur = target;
    for (uint32_t ch = 0; ch < g->channels; ++ch) out[ch][n] = in[ch][n] * cur;
  }
  g->current = cur;
}

/* Audio thread (and before activate). Wait-free. */
static void gain_set_parameter(aers_plugin_instance instance, uint32_t index, double value) {
  gain_instance* g = instance;
  if (index == 0) g->target = db_to_linear(value);
}

/* Non-RT. */
static void gain_deactivate(aers_plugin_instance instance) {
  (void)instance;
}

/* Non-RT, never the audio thread. */
static void gain_destroy(aers_plugin_instance instance) {
  free(instance);
}

static const aers_kind_descriptor kKinds[] = {{
    sizeof(aers_kind_descriptor),
    "gain",
    "Level change in dB; changes glide over ~5 ms (example plugin).",
    AERS_CHANNELS_FOLLOW_NODE,
    AERS_CHANNELS_FOLLOW_NODE,
    MAX_CHANNELS,
    sizeof kGainParams / sizeof kGainParams[0],
    kGainParams,
    gain_instantiate,
    gain_activate,
    gain_process,
    gain_set_parameter,
    gain_deactivate,
    gain_destroy,
    NULL, /* latency_frames: the gain adds no latency */
}};

static const aers_plugin_descriptor kPlugin = {
    AERS_PLUGIN_ABI_VERSION,
    "example_gain",
    sizeof kKinds / sizeof kKinds[0],
    kKinds,
};

#if defined(AERS_EXAMPLE_PAD_BYTES) && AERS_EXAMPLE_PAD_BYTES > 0
/* Read-only padding (benchmarks): kept by `used`, never touched. */
__attribute__((used)) static const unsigned char kPadding[AERS_EXAMPLE_PAD_BYTES] = {1};
#endif

const aers_plugin_descriptor* aers_plugin_entry(uint32_t host_abi_version) {
  return host_abi_version == AERS_PLUGIN_ABI_VERSION ? &kPlugin : NULL;
}
