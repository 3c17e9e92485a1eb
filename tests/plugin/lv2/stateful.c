/* An LV2 plugin for AERS's host tests: it needs urid:map and worker:schedule,
 * has state (state:interface), an enumeration, a toggle, an atom input and a
 * CV input, and logs through log:log.
 *
 *   out = in * gain * stored * (mode == invert ? -1 : 1)
 *
 * `stored` starts at 1. When `latch` turns on, run() schedules work with the
 * current gain; the worker answers with it and work_response() (back in the
 * audio thread) makes it `stored`, which the plugin's state saves and
 * restores. If the atom input is not a valid empty-or-not sequence, or the
 * CV input is not connected, the output is silent (a visible host fault). */
#include <lv2/atom/atom.h>
#include <lv2/core/lv2.h>
#include <lv2/log/log.h>
#include <lv2/options/options.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>
#include <stdlib.h>
#include <string.h>

#define PLUGIN_URI "urn:aers:lv2:stateful"
#define STORED_URI PLUGIN_URI "#stored"

enum { P_IN, P_OUT, P_GAIN, P_LATCH, P_MODE, P_LATENCY, P_EVENTS, P_CV };

typedef struct {
  const float* in;
  float* out;
  const float* gain;
  const float* latch;
  const float* mode;
  float* latency;
  const LV2_Atom_Sequence* events;
  const float* cv;
  float stored;
  float last_latch;
  LV2_Worker_Schedule* schedule;
  LV2_Log_Log* log;
  LV2_URID stored_key, atom_float, atom_sequence, log_note;
} Plugin;

static LV2_Handle instantiate(const LV2_Descriptor* d, double rate, const char* path,
                              const LV2_Feature* const* features) {
  (void)d;
  (void)path;
  LV2_URID_Map* map = NULL;
  LV2_Worker_Schedule* schedule = NULL;
  LV2_Log_Log* log = NULL;
  const LV2_Options_Option* options = NULL;
  for (int i = 0; features[i]; ++i) {
    if (!strcmp(features[i]->URI, LV2_URID__map)) map = features[i]->data;
    if (!strcmp(features[i]->URI, LV2_WORKER__schedule)) schedule = features[i]->data;
    if (!strcmp(features[i]->URI, LV2_LOG__log)) log = features[i]->data;
    if (!strcmp(features[i]->URI, LV2_OPTIONS__options)) options = features[i]->data;
  }
  if (!map || !schedule) return NULL;
  Plugin* p = calloc(1, sizeof(Plugin));
  if (!p) return NULL;
  p->stored = 1.0f;
  p->schedule = schedule;
  p->log = log;
  p->stored_key = map->map(map->handle, STORED_URI);
  p->atom_float = map->map(map->handle, LV2_ATOM__Float);
  p->atom_sequence = map->map(map->handle, LV2_ATOM__Sequence);
  p->log_note = map->map(map->handle, LV2_LOG__Note);
  int max_block = 0;
  LV2_URID max_key = map->map(map->handle, "http://lv2plug.in/ns/ext/buf-size#maxBlockLength");
  for (const LV2_Options_Option* o = options; o && o->key; ++o) {
    if (o->key == max_key && o->size == sizeof(int)) max_block = *(const int*)o->value;
  }
  if (log)
    log->printf(log->handle, p->log_note, "stateful: %.0f Hz, max block %d", rate, max_block);
  return p;
}

static void connect_port(LV2_Handle h, uint32_t port, void* data) {
  Plugin* p = h;
  switch (port) {
    case P_IN:
      p->in = data;
      break;
    case P_OUT:
      p->out = data;
      break;
    case P_GAIN:
      p->gain = data;
      break;
    case P_LATCH:
      p->latch = data;
      break;
    case P_MODE:
      p->mode = data;
      break;
    case P_LATENCY:
      p->latency = data;
      break;
    case P_EVENTS:
      p->events = data;
      break;
    case P_CV:
      p->cv = data;
      break;
  }
}

static void run(LV2_Handle h, uint32_t n) {
  Plugin* p = h;
  const int atoms_ok = p->events && p->events->atom.type == p->atom_sequence &&
                       p->events->atom.size >= sizeof(LV2_Atom_Sequence_Body);
  const int ok = atoms_ok && p->cv != NULL;
  if (*p->latch > 0.5f && p->last_latch <= 0.5f) {
    const float g = *p->gain;
    p->schedule->schedule_work(p->schedule->handle, sizeof g, &g);
  }
  p->last_latch = *p->latch;
  const float k = ok ? *p->gain * p->stored * (*p->mode > 0.5f ? -1.0f : 1.0f) : 0.0f;
  for (uint32_t i = 0; i < n; ++i) p->out[i] = p->in[i] * k;
  if (p->latency) *p->latency = 0.0f;
}

static void cleanup(LV2_Handle h) {
  free(h);
}

static LV2_Worker_Status work(LV2_Handle h, LV2_Worker_Respond_Function respond,
                              LV2_Worker_Respond_Handle rh, uint32_t size, const void* data) {
  (void)h;
  return respond(rh, size, data);
}

static LV2_Worker_Status work_response(LV2_Handle h, uint32_t size, const void* data) {
  Plugin* p = h;
  if (size == sizeof(float)) {
    memcpy(&p->stored, data, sizeof(float));
    if (p->log) p->log->printf(p->log->handle, p->log_note, "stateful: stored %.3f", p->stored);
  }
  return LV2_WORKER_SUCCESS;
}

static LV2_State_Status save(LV2_Handle h, LV2_State_Store_Function store, LV2_State_Handle sh,
                             uint32_t flags, const LV2_Feature* const* features) {
  (void)flags;
  (void)features;
  Plugin* p = h;
  return store(sh, p->stored_key, &p->stored, sizeof(float), p->atom_float,
               LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
}

static LV2_State_Status restore(LV2_Handle h, LV2_State_Retrieve_Function retrieve,
                                LV2_State_Handle sh, uint32_t flags,
                                const LV2_Feature* const* features) {
  (void)flags;
  (void)features;
  Plugin* p = h;
  size_t size = 0;
  uint32_t type = 0, vflags = 0;
  const void* v = retrieve(sh, p->stored_key, &size, &type, &vflags);
  if (v && size == sizeof(float) && type == p->atom_float) memcpy(&p->stored, v, sizeof(float));
  return LV2_STATE_SUCCESS;
}

static const void* extension_data(const char* uri) {
  static const LV2_Worker_Interface worker = {work, work_response, NULL};
  static const LV2_State_Interface state = {save, restore};
  if (!strcmp(uri, LV2_WORKER__interface)) return &worker;
  if (!strcmp(uri, LV2_STATE__interface)) return &state;
  return NULL;
}

static const LV2_Descriptor descriptor = {PLUGIN_URI, instantiate, connect_port, NULL,
                                          run,        NULL,        cleanup,      extension_data};

LV2_SYMBOL_EXPORT const LV2_Descriptor* lv2_descriptor(uint32_t index) {
  return index == 0 ? &descriptor : NULL;
}
