/* AERS plugin C ABI.
 *
 * A plugin is a shared object that exports exactly one entry point,
 * aers_plugin_entry(), returning a static descriptor table: the node kinds it
 * provides, their ports and parameters, and the functions that make and run
 * instances. The daemon checks the file (hash, signature, ELF properties)
 * BEFORE it is loaded; see docs/plugins.md for the manifest and load order.
 *
 * Threads and the real-time contract, per function:
 *   - aers_plugin_entry, instantiate, activate, deactivate, destroy:
 *       non-real-time threads only. May allocate, may block briefly. Never
 *       called concurrently for the same instance. destroy() runs on the
 *       daemon's housekeeping thread after the audio thread stopped using the
 *       instance (never on the audio thread).
 *   - process, set_parameter:
 *       the AUDIO THREAD only, one call at a time per instance (set_parameter
 *       is never concurrent with process of the same instance: the host
 *       delivers parameter changes at the start of a period, on the audio
 *       thread, just before process). Both MUST be wait-free: no allocation,
 *       no locks, no system calls, no I/O, no unbounded loops.
 *       (Exception: the host also calls set_parameter once per parameter
 *       between instantiate and activate, on a non-real-time thread, to set
 *       the initial values.)
 *
 * Everything the descriptor points at (strings, arrays) must stay valid and
 * unchanged until the library is unloaded.
 *
 * The plugin may depend only on libc and libm unless its manifest lists more
 * (`dependencies`), must not carry DT_RPATH/DT_RUNPATH, and must be linked
 * with a non-executable stack (-Wl,-z,noexecstack).
 */
#ifndef AERS_PLUGIN_H
#define AERS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** ABI version of this header. A host accepts a plugin only if the
 *  descriptor's abi_version equals the version the host was built with and
 *  the manifest's abi_version says the same. */
#define AERS_PLUGIN_ABI_VERSION 1u

/** Name of the one exported symbol. */
#define AERS_PLUGIN_ENTRY_SYMBOL "aers_plugin_entry"

/** Port width that follows the node's configured `channels` (1..max_channels). */
#define AERS_CHANNELS_FOLLOW_NODE 0xFFFFFFFFu

/** Limits the host enforces on a descriptor (larger tables are refused). */
#define AERS_PLUGIN_MAX_KINDS 64u
#define AERS_PLUGIN_MAX_PARAMS 64u
#define AERS_PLUGIN_MAX_NAME 64u /* bytes, [a-z0-9_], first a letter */

/** One parameter of a kind. Values are doubles in the parameter's unit. */
typedef struct aers_param_descriptor {
  const char* name;     /**< [a-z0-9_]+, with its unit: "gain_db", "freq_hz" */
  const char* unit;     /**< "dB", "Hz", "ms", "" ... (may be NULL = "") */
  const char* help;     /**< one line (may be NULL) */
  double min_value;     /**< inclusive, finite */
  double max_value;     /**< inclusive, finite, >= min_value */
  double default_value; /**< in [min_value, max_value] */
} aers_param_descriptor;

/** Opaque instance handle returned by instantiate(). */
typedef void* aers_plugin_instance;

/** One node kind. */
typedef struct aers_kind_descriptor {
  uint32_t struct_size;    /**< sizeof(aers_kind_descriptor) */
  const char* name;        /**< [a-z0-9_]+; registered as "<plugin>/<name>" */
  const char* description; /**< one line */
  /** Channels of the node's one input port ("in") and one output port
   *  ("out"): a fixed count (0 = no such port) or AERS_CHANNELS_FOLLOW_NODE. */
  uint32_t input_channels;
  uint32_t output_channels;
  uint32_t max_channels; /**< largest `channels` a node accepts (1..64) */
  uint32_t param_count;  /**< <= AERS_PLUGIN_MAX_PARAMS */
  const aers_param_descriptor* params;

  /** Non-RT. Makes an instance for a stream of `sample_rate_hz`, processing
   *  at most `max_period_frames` per process() call, `channels` wide (the
   *  node's channels). Returns NULL on failure. */
  aers_plugin_instance (*instantiate)(const struct aers_kind_descriptor* kind,
                                      double sample_rate_hz, uint32_t max_period_frames,
                                      uint32_t channels);
  /** Non-RT. Called once before the first process(); reset state here.
   *  Returns 0 on success. */
  int (*activate)(aers_plugin_instance instance);
  /** AUDIO THREAD. Wait-free; no allocation, locks or syscalls.
   *  `in` has one pointer per input channel, `out` one per output channel
   *  (never aliasing); frames <= max_period_frames. */
  void (*process)(aers_plugin_instance instance, const float* const* in, float* const* out,
                  uint32_t frames);
  /** AUDIO THREAD (and once per parameter before activate, non-RT).
   *  Wait-free. `value` is already clamped to [min_value, max_value].
   *  Should glide to the new value without a click. */
  void (*set_parameter)(aers_plugin_instance instance, uint32_t index, double value);
  /** Non-RT. Called once after the last process(). */
  void (*deactivate)(aers_plugin_instance instance);
  /** Non-RT, never the audio thread. Frees the instance. */
  void (*destroy)(aers_plugin_instance instance);

  /* --- Optional members. A host reads a member only when struct_size
   *     covers it, so plugins built against an older header keep working;
   *     hosts index the kinds array by the first kind's struct_size. --- */

  /** Non-RT, optional (may be NULL = 0). Called once after activate():
   *  the frames of latency this instance adds between input and output
   *  (a look-ahead limiter's look-ahead, a linear-phase FIR's group delay).
   *  The host adds it to the graph latency it reports (JACK port latency,
   *  `aersctl graph`). Fixed for the instance's life; at most 10 s of
   *  frames at the instance's sample rate. */
  uint32_t (*latency_frames)(aers_plugin_instance instance);
} aers_kind_descriptor;

/** struct_size of a kind descriptor without the optional members (ABI 1 as
 *  first published); the smallest struct_size a host accepts. */
#define AERS_KIND_DESCRIPTOR_MIN_SIZE ((uint32_t)offsetof(aers_kind_descriptor, latency_frames))

/** What the entry point returns. */
typedef struct aers_plugin_descriptor {
  uint32_t abi_version; /**< AERS_PLUGIN_ABI_VERSION of the plugin's build */
  const char* name;     /**< informational; the manifest name is authoritative */
  uint32_t kind_count;  /**< <= AERS_PLUGIN_MAX_KINDS */
  const aers_kind_descriptor* kinds;
} aers_plugin_descriptor;

/** Type of the entry point. Non-RT. Called once after loading with the
 *  host's AERS_PLUGIN_ABI_VERSION; returns NULL if the plugin cannot serve
 *  that version (the host then refuses it). */
typedef const aers_plugin_descriptor* (*aers_plugin_entry_fn)(uint32_t host_abi_version);

#if defined(__GNUC__)
#define AERS_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define AERS_PLUGIN_EXPORT
#endif

/** Every plugin defines this one function (and exports nothing else it
 *  wants the host to use). */
AERS_PLUGIN_EXPORT const aers_plugin_descriptor* aers_plugin_entry(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* AERS_PLUGIN_H */
