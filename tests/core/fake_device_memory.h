#pragma once
// A device for the caching allocator's tests: its memory is host addresses and its events complete
// when told to.
#include <map>
#include <vector>

#include "core/cuda/caching_allocator.h"

namespace kiln::test {

class FakeDevice final : public cuda::DeviceMemoryBackend {
 public:
  size_t capacity = size_t{1} << 40, used = 0;
  int mallocs = 0, frees = 0, syncs = 0;
  std::map<void*, size_t> blocks;
  std::map<void*, bool> events;  // event -> done
  bool auto_complete = false;
  std::vector<void*> recorded_on;  // the stream of every record_event

  void* malloc(size_t bytes) override {
    if (used + bytes > capacity) return nullptr;
    void* p = ::operator new(bytes);
    blocks[p] = bytes;
    used += bytes;
    ++mallocs;
    return p;
  }
  void free(void* p) override {
    used -= blocks.at(p);
    blocks.erase(p);
    ::operator delete(p);
    ++frees;
  }
  void* create_event() override {
    void* e = new int(0);
    events[e] = false;
    return e;
  }
  void destroy_event(void* e) override {
    events.erase(e);
    delete static_cast<int*>(e);
  }
  void record_event(void* e, void* stream) override {
    events[e] = auto_complete;
    recorded_on.push_back(stream);
  }
  bool event_done(void* e) override { return events.at(e); }
  void synchronize_device() override {
    ++syncs;
    for (auto& [e, done] : events) done = true;
  }
  void complete_all() {
    for (auto& [e, done] : events) done = true;
  }
};

inline void* const kStreamA = reinterpret_cast<void*>(0x10);
inline void* const kStreamB = reinterpret_cast<void*>(0x20);

}  // namespace kiln::test
