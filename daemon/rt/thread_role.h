// Thread roles for debug assertions: the audio thread must never run what is
// reserved for normal threads (edits, compiling, I/O) and normal threads
// must never run what only the audio thread may (Runner::Process).
//
// A backend marks its audio thread with MarkAudioThread() (JACK: the
// first process callback; null: the top of its loop); code that drives
// Process() from a thread that also does normal work (offline render's DSP
// thread, tests, benchmarks) holds an AudioThreadScope for the periods.
//
// AERS_DCHECK_AUDIO_THREAD() / AERS_DCHECK_NOT_AUDIO_THREAD() abort in builds
// with assertions (debug, debugoptimized: development, CI, the sanitizer
// builds) and compile to nothing with NDEBUG (release). docs/threads.md lists
// every thread and its role.
#pragma once

#include <cassert>

namespace aers::rt {

namespace internal {
inline thread_local bool audio_thread = false;
}  // namespace internal

/// Any thread. Marks the calling thread as an audio thread for good.
inline void MarkAudioThread() noexcept {
  internal::audio_thread = true;
}

/// Any thread. Whether the calling thread runs audio periods now.
inline bool OnAudioThread() noexcept {
  return internal::audio_thread;
}

/// Marks the calling thread as the audio thread for the scope's lifetime.
class AudioThreadScope {
 public:
  AudioThreadScope() noexcept : was_(internal::audio_thread) { internal::audio_thread = true; }
  ~AudioThreadScope() { internal::audio_thread = was_; }
  AudioThreadScope(const AudioThreadScope&) = delete;
  AudioThreadScope& operator=(const AudioThreadScope&) = delete;

 private:
  bool was_;
};

/// Drops the audio role for the scope's lifetime: for callbacks a server
/// runs on its audio thread between periods, where no Process() can run and
/// normal-thread work is allowed (JACK2 calls the buffer-size callback on its
/// process thread).
class NotAudioThreadScope {
 public:
  NotAudioThreadScope() noexcept : was_(internal::audio_thread) { internal::audio_thread = false; }
  ~NotAudioThreadScope() { internal::audio_thread = was_; }
  NotAudioThreadScope(const NotAudioThreadScope&) = delete;
  NotAudioThreadScope& operator=(const NotAudioThreadScope&) = delete;

 private:
  bool was_;
};

}  // namespace aers::rt

#ifdef NDEBUG
#define AERS_DCHECK_AUDIO_THREAD() static_cast<void>(0)
#define AERS_DCHECK_NOT_AUDIO_THREAD() static_cast<void>(0)
#else
#define AERS_DCHECK_AUDIO_THREAD() \
  assert(::aers::rt::OnAudioThread() && "must run on the audio thread (rt/thread_role.h)")
#define AERS_DCHECK_NOT_AUDIO_THREAD() \
  assert(!::aers::rt::OnAudioThread() && "must not run on the audio thread (rt/thread_role.h)")
#endif
