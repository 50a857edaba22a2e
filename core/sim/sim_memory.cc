#include "core/sim/sim_memory.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

#include "core/error.h"

namespace kiln::sim {
namespace {

static_assert(sizeof(void*) == 8, "the sim device tags 64-bit addresses");

// Room after each allocation that no other allocation gets: an overrun of up to this many bytes
// is reported as "past the end of allocation X", not as a stray pointer.
constexpr uint64_t kGuardBytes = uint64_t{64} << 10;
// The tagged address space is 48 bits wide; the first 4 GiB stay unused so offsets read clearly.
constexpr uint64_t kFirstAddress = uint64_t{1} << 32;
constexpr uint64_t kAddressLimit = uint64_t{1} << 48;
// Freed ranges remembered for "use after free" messages; older ones are reported as unknown.
constexpr size_t kFreedHistory = size_t{1} << 16;

size_t round_up(size_t bytes) { return (std::max<size_t>(bytes, 1) + kSimAlignment - 1) / kSimAlignment * kSimAlignment; }

// The tagged range an allocation owns: its rounded size plus the guard gap.
uint64_t span(size_t bytes) { return round_up(bytes) + kGuardBytes; }

// Shared by every arena, so two arenas never hand out the same tagged address.
std::atomic<uint64_t> next_address{kFirstAddress};

void fill(void* host, size_t bytes, uint16_t word) {
  std::fill_n(static_cast<uint16_t*>(host), round_up(bytes) / sizeof(uint16_t), word);
}

std::string hex(uint64_t v) { return str_cat("0x", std::hex, v); }

// The entry of `blocks` (keyed by tagged start) whose span holds `address`, or nullptr.
template <typename Block>
const std::pair<const uint64_t, Block>* owner(const std::map<uint64_t, Block>& blocks, uint64_t address) {
  auto it = blocks.upper_bound(address);
  if (it == blocks.begin()) return nullptr;
  --it;
  return address - it->first < span(it->second.bytes) ? &*it : nullptr;
}

[[noreturn]] void memory_fault(const std::string& what) { throw InternalError("sim device memory: " + what); }

}  // namespace

SimMemory::SimMemory(size_t quarantine_bytes) : quarantine_limit_(quarantine_bytes) {}

SimMemory::~SimMemory() {
  for (auto& [address, a] : live_) std::free(a.host);
  for (auto& [address, f] : freed_) std::free(f.host);
}

void* SimMemory::allocate(size_t bytes) {
  const uint64_t address = next_address.fetch_add(span(bytes));
  if (address + span(bytes) > kAddressLimit) fail("sim device: tagged address space exhausted allocating ", bytes, " bytes");
  void* host = std::aligned_alloc(kSimAlignment, round_up(bytes));
  if (!host) throw std::bad_alloc();
  fill(host, bytes, kAllocPoison);  // before the block is visible to untag()
  std::lock_guard<std::mutex> lock(mutex_);
  live_.emplace(address, Allocation{bytes, host});
  stats_.live_bytes += bytes;
  stats_.peak_live_bytes = std::max(stats_.peak_live_bytes, stats_.live_bytes);
  ++stats_.live_allocations;
  ++stats_.allocations;
  return reinterpret_cast<void*>(kSimAddressTag | address);
}

void SimMemory::free(void* device_ptr) {
  if (!device_ptr) return;
  if (!is_sim_pointer(device_ptr)) memory_fault(str_cat("free of ", device_ptr, ", which is not a sim device pointer"));
  const uint64_t address = reinterpret_cast<uint64_t>(device_ptr) & ~kSimAddressTagMask;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(address);
  if (it == live_.end()) {
    if (freed_.count(address)) memory_fault(str_cat("double free of ", device_ptr));
    if (const auto* a = owner(live_, address))
      memory_fault(str_cat("free of ", device_ptr, ", ", address - a->first, " bytes into the ", a->second.bytes,
                           "-byte allocation at ", hex(kSimAddressTag | a->first), " (not its start)"));
    memory_fault(str_cat("free of ", device_ptr, ", which is not the start of a live allocation"));
  }
  const Allocation a = it->second;
  live_.erase(it);
  fill(a.host, a.bytes, kFreePoison);
  freed_.emplace(address, Freed{a.bytes, a.host});
  freed_order_.push_back(address);
  quarantine_.push_back(address);
  quarantined_bytes_ += round_up(a.bytes);
  stats_.live_bytes -= a.bytes;
  --stats_.live_allocations;
  ++stats_.frees;
  release_quarantine_over_limit();
  forget_oldest_frees();
}

void SimMemory::release_quarantine_over_limit() {
  while (quarantined_bytes_ > quarantine_limit_ && !quarantine_.empty()) {
    Freed& f = freed_.at(quarantine_.front());
    quarantine_.pop_front();
    quarantined_bytes_ -= round_up(f.bytes);
    std::free(f.host);
    f.host = nullptr;
  }
}

void SimMemory::forget_oldest_frees() {
  while (freed_order_.size() > kFreedHistory) {
    auto it = freed_.find(freed_order_.front());
    freed_order_.pop_front();
    if (it->second.host) {  // still quarantined, and then the oldest there (both lists are in free order)
      KILN_CHECK(!quarantine_.empty() && quarantine_.front() == it->first);
      quarantine_.pop_front();
      quarantined_bytes_ -= round_up(it->second.bytes);
      std::free(it->second.host);
    }
    freed_.erase(it);
  }
}

void* SimMemory::untag(const void* device_ptr, size_t bytes) const {
  if (!device_ptr && bytes == 0) return nullptr;
  if (!is_sim_pointer(device_ptr))
    memory_fault(str_cat(device_ptr, " is not a sim device pointer (a host pointer where device memory belongs?)"));
  const uint64_t address = reinterpret_cast<uint64_t>(device_ptr) & ~kSimAddressTagMask;
  std::lock_guard<std::mutex> lock(mutex_);
  if (const auto* a = owner(live_, address)) {
    const uint64_t offset = address - a->first;
    const size_t size = a->second.bytes;
    if (offset > size || bytes > size - offset)
      memory_fault(str_cat(bytes, " bytes at ", device_ptr, " (offset ", offset, ") run ", offset + bytes - size,
                           " bytes past the end of the ", size, "-byte allocation at ", hex(kSimAddressTag | a->first)));
    return static_cast<char*>(a->second.host) + offset;
  }
  if (const auto* f = owner(freed_, address))
    memory_fault(str_cat(device_ptr, " lies in the ", f->second.bytes, "-byte allocation at ",
                         hex(kSimAddressTag | f->first), ", which has been freed (use after free)"));
  memory_fault(str_cat(device_ptr, " is not inside any sim allocation (never allocated, or freed long ago)"));
}

SimMemoryStats SimMemory::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  SimMemoryStats s = stats_;
  s.quarantined_bytes = quarantined_bytes_;
  return s;
}

void SimMemory::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_live_bytes = stats_.live_bytes;
}

int checked_sim_device(int device_index) {
  if (device_index < 0 || device_index >= kSimDeviceCount)
    fail("device sim:", device_index, " does not exist: the sim backend has devices sim:0 .. sim:", kSimDeviceCount - 1);
  return device_index;
}

SimMemory& sim_memory() {
  static auto* memory = new SimMemory();
  return *memory;
}

}  // namespace kiln::sim
