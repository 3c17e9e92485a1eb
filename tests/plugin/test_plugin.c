/* Test plugins for tests/plugin/. One source, built several ways (see
 * tests/meson.build): a pass-through kind `pass` whose lifecycle calls are
 * logged with their thread id, plus deliberate defects chosen by macros:
 *   TP_ABI_VERSION=N    descriptor claims ABI N (wrong ABI)
 *   TP_EXTRA_KIND       also declares kind `sneaky` (not in allowed_node_kinds)
 *   TP_NEEDS_SODIUM     calls libsodium, so DT_NEEDED gets libsodium.so.23
 *   TP_OLD_HEADER       kinds `pass` and `pass2` laid out as the first ABI 1 header had
 *                       them (no optional members: struct_size is the minimum), so
 *                       the host must index the kinds array by struct_size
 *   TP_EDGE             `pass` reports 32 frames of latency (latency_frames) and has
 *                       a second parameter `poison` (0..3): 1 outputs NaN, 2 +Inf,
 *                       3 a 1e30 spike every 16th sample (robustness tests)
 * and through link flags: executable stack, DT_RPATH, DT_RUNPATH.
 *
 * If AERS_TEST_PLUGIN_LOG names a file, instantiate/activate/deactivate/
 * destroy and the library's unload append "<event> <tid>" lines to it
 * (never from process()). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aers/plugin.h"

#ifdef TP_NEEDS_SODIUM
#include <sodium.h>
#endif

#ifndef TP_ABI_VERSION
#define TP_ABI_VERSION AERS_PLUGIN_ABI_VERSION
#endif

static void log_event(const char* what) {
  const char* path = getenv("AERS_TEST_PLUGIN_LOG");
  if (path == NULL || *path == '\0') return;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  char line[96];
  int n = snprintf(line, sizeof line, "%s %ld\n", what, (long)gettid());
  if (n > 0) (void)!write(fd, line, (size_t)n);
  close(fd);
}

__attribute__((destructor)) static void on_unload(void) {
  log_event("unload");
}

typedef struct pass_instance {
  uint32_t channels;
  float scale;
  int poison;
} pass_instance;

static const aers_param_descriptor kParams[] = {
    {"scale", "", "linear factor", 0.0, 4.0, 1.0},
#ifdef TP_EDGE
    {"poison", "", "0 clean, 1 NaN, 2 +Inf, 3 1e30 spikes", 0.0, 3.0, 0.0},
#endif
};

static aers_plugin_instance pass_instantiate(const aers_kind_descriptor* kind, double rate,
                                             uint32_t max_frames, uint32_t channels) {
  (void)kind;
  (void)rate;
  (void)max_frames;
  pass_instance* p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->channels = channels;
  p->scale = 1.0f;
#ifdef TP_NEEDS_SODIUM
  if (sodium_init() < 0) {
    free(p);
    return NULL;
  }
#endif
  log_event("instantiate");
  return p;
}

static int pass_activate(aers_plugin_instance instance) {
  (void)instance;
  log_event("activate");
  return 0;
}

/* Audio thread. Wait-free. */
static void pass_process(aers_plugin_instance instance, const float* const* in, float* const* out,
                         uint32_t frames) {
  pass_instance* p = instance;
  for (uint32_t ch = 0; ch < p->channels; ++ch) {
    for (uint32_t n = 0; n < frames; ++n) out[ch][n] = in[ch][n] * p->scale;
  }
#ifdef TP_EDGE
  if (p->poison != 0) {
    const float bad = p->poison == 1 ? __builtin_nanf("") : p->poison == 2 ? __builtin_inff() : 1e30f;
    for (uint32_t ch = 0; ch < p->channels; ++ch) {
      for (uint32_t n = 0; n < frames; n += (p->poison == 3 ? 16 : 1)) out[ch][n] = bad;
    }
  }
#endif
}

/* Audio thread. Wait-free. */
static void pass_set_parameter(aers_plugin_instance instance, uint32_t index, double value) {
  pass_instance* p = instance;
  if (index == 0) p->scale = (float)value;
  if (index == 1) p->poison = (int)value;
}

static void pass_deactivate(aers_plugin_instance instance) {
  (void)instance;
  log_event("deactivate");
}

static void pass_destroy(aers_plugin_instance instance) {
  log_event("destroy");
  free(instance);
}

#ifdef TP_EDGE
static uint32_t pass_latency_frames(aers_plugin_instance instance) {
  (void)instance;
  return 32;
}
#define TP_LATENCY_FN pass_latency_frames
#else
#define TP_LATENCY_FN NULL
#endif

#define KIND(name_)                                                                              \
  {                                                                                              \
    sizeof(aers_kind_descriptor), name_, "pass-through test kind", AERS_CHANNELS_FOLLOW_NODE,    \
        AERS_CHANNELS_FOLLOW_NODE, 8, sizeof kParams / sizeof kParams[0], kParams,               \
        pass_instantiate, pass_activate, pass_process, pass_set_parameter, pass_deactivate,      \
        pass_destroy, TP_LATENCY_FN                                                              \
  }

#ifdef TP_OLD_HEADER
/* aers_kind_descriptor as published first, before latency_frames. */
typedef struct old_kind_descriptor {
  uint32_t struct_size;
  const char* name;
  const char* description;
  uint32_t input_channels, output_channels, max_channels, param_count;
  const aers_param_descriptor* params;
  aers_plugin_instance (*instantiate)(const aers_kind_descriptor*, double, uint32_t, uint32_t);
  int (*activate)(aers_plugin_instance);
  void (*process)(aers_plugin_instance, const float* const*, float* const*, uint32_t);
  void (*set_parameter)(aers_plugin_instance, uint32_t, double);
  void (*deactivate)(aers_plugin_instance);
  void (*destroy)(aers_plugin_instance);
} old_kind_descriptor;

#define OLD_KIND(name_)                                                                          \
  {                                                                                              \
    sizeof(old_kind_descriptor), name_, "pass-through test kind", AERS_CHANNELS_FOLLOW_NODE,     \
        AERS_CHANNELS_FOLLOW_NODE, 8, sizeof kParams / sizeof kParams[0], kParams,               \
        pass_instantiate, pass_activate, pass_process, pass_set_parameter, pass_deactivate,      \
        pass_destroy                                                                             \
  }

static const old_kind_descriptor kOldKinds[] = {OLD_KIND("pass"), OLD_KIND("pass2")};

static const aers_plugin_descriptor kPlugin = {
    TP_ABI_VERSION,
    "test_plugin",
    sizeof kOldKinds / sizeof kOldKinds[0],
    (const aers_kind_descriptor*)(const void*)kOldKinds,
};
#else
static const aers_kind_descriptor kKinds[] = {
    KIND("pass"),
#ifdef TP_EXTRA_KIND
    KIND("sneaky"),
#endif
};

static const aers_plugin_descriptor kPlugin = {
    TP_ABI_VERSION,
    "test_plugin",
    sizeof kKinds / sizeof kKinds[0],
    kKinds,
};
#endif

const aers_plugin_descriptor* aers_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version; /* answers regardless: the host must check */
  return &kPlugin;
}
