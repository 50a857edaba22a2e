#include "core/sim/sim_stream.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>

#include "core/current_device.h"
#include "core/error.h"
#include "core/sim/sim_memory.h"

namespace kiln::sim {
namespace {

std::mutex jitter_mutex;
std::optional<std::optional<SimJitter>> jitter_setting;  // outer empty: not read from the environment yet
std::atomic<uint64_t> streams_created{0};

// splitmix64: spreads (seed, stream number) over the generator's seed space.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

std::optional<SimJitter> parse_sim_jitter(const std::string& text) {
  if (text.empty()) return std::nullopt;
  // std::stoull would accept a sign and leading blanks; only digits are meant here.
  auto is_number = [](const std::string& t) { return !t.empty() && t.find_first_not_of("0123456789") == std::string::npos; };
  const size_t colon = text.find(':');
  const std::string seed = text.substr(0, colon);
  const std::string delay = colon == std::string::npos ? "" : text.substr(colon + 1);
  if (!is_number(seed) || (colon != std::string::npos && !is_number(delay)))
    fail("KILN_SIM_JITTER='", text, "': expected a seed or seed:max_delay_us (non-negative integers)");
  SimJitter jitter;
  try {
    jitter.seed = std::stoull(seed);
    if (!delay.empty()) jitter.max_delay_us = std::stoi(delay);
  } catch (const std::out_of_range&) {
    fail("KILN_SIM_JITTER='", text, "': a number is out of range");
  }
  return jitter;
}

void set_sim_jitter(std::optional<SimJitter> jitter) {
  if (jitter && jitter->max_delay_us < 0) fail("sim jitter: max_delay_us must be >= 0, got ", jitter->max_delay_us);
  std::lock_guard<std::mutex> lock(jitter_mutex);
  jitter_setting = jitter;
}

std::optional<SimJitter> sim_jitter() {
  std::lock_guard<std::mutex> lock(jitter_mutex);
  if (!jitter_setting) {
    const char* value = std::getenv("KILN_SIM_JITTER");
    jitter_setting = parse_sim_jitter(value ? value : "");
  }
  return *jitter_setting;
}

SimStream::SimStream(int device_index) : device_index_(checked_sim_device(device_index)) {
  const uint64_t number = streams_created.fetch_add(1);
  if (const std::optional<SimJitter> jitter = sim_jitter()) {
    jitter_random_.emplace(mix(jitter->seed ^ mix(number)));
    jitter_max_delay_us_ = jitter->max_delay_us;
  }
  worker_ = std::thread([this] { work(); });
}

SimStream::~SimStream() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  queued_.notify_one();
  worker_.join();  // the worker drains the queue first
  if (error_) {
    try {
      std::rethrow_exception(error_);
    } catch (const std::exception& e) {
      std::cerr << "kiln: sim stream destroyed with an unreported task error: " << e.what() << std::endl;
    } catch (...) {
      std::cerr << "kiln: sim stream destroyed with an unreported task error" << std::endl;
    }
  }
}

SimStream& SimStream::default_stream(int device_index) {
  checked_sim_device(device_index);
  static std::mutex mutex;
  static std::array<SimStream*, kSimDeviceCount> streams{};  // never destroyed, like the arena
  std::lock_guard<std::mutex> lock(mutex);
  SimStream*& s = streams[device_index];
  if (!s) s = new SimStream(device_index);
  return *s;
}

SimStream& SimStream::from(const Stream& stream) {
  KILN_CHECK(stream.device().is_sim(), "a sim stream was expected, got a ", stream.device().to_string(), " stream");
  if (!stream.handle()) return default_stream(stream.device().index);
  return *static_cast<SimStream*>(stream.handle());
}

void SimStream::enqueue(std::function<void()> task) {
  if (current_sim_device() != device_index_)
    fail("a kernel was queued to a stream of sim:", device_index_, " from a thread whose current device is sim:",
         current_sim_device(), " (CUDA fails such a launch): make the device current on each thread that issues "
         "work to it (kiln::make_device_current)");
  push(Task{std::move(task), false});
}

void SimStream::enqueue_copy(std::function<void()> task) { push(Task{std::move(task), false}); }

void SimStream::enqueue_control(std::function<void()> task) { push(Task{std::move(task), true}); }

namespace {
// Per host thread, as CUDA's thread-local capture mode: only the capturing thread may not allocate.
thread_local int t_capturing = 0;
}  // namespace

int sim_streams_capturing() { return t_capturing; }

void SimStream::begin_capture() {
  std::lock_guard<std::mutex> lock(mutex_);
  KILN_CHECK(!capturing_, "a sim stream began a graph capture twice");
  capturing_ = true;
  captured_.clear();
  ++t_capturing;
}

std::vector<SimStream::Recorded> SimStream::end_capture() {
  std::lock_guard<std::mutex> lock(mutex_);
  KILN_CHECK(capturing_, "end_capture on a sim stream that is not capturing");
  capturing_ = false;
  --t_capturing;
  return std::exchange(captured_, {});
}

void SimStream::replay(const std::vector<Recorded>& tasks) {
  for (const Recorded& t : tasks) push(Task{t.run, t.control});
}

void SimStream::push(Task task) {
  KILN_CHECK(task.run, "empty task queued on a sim stream");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (capturing_) {
      captured_.push_back({std::move(task.run), task.control});
      return;
    }
    queue_.push_back(std::move(task));
    ++enqueued_;
  }
  queued_.notify_one();
}

void SimStream::synchronize() {
  KILN_CHECK(std::this_thread::get_id() != worker_.get_id(),
             "a task of a sim stream synchronized its own stream (it would wait for itself)");
  std::unique_lock<std::mutex> lock(mutex_);
  if (capturing_) throw Error("synchronize() on a sim stream that is capturing a graph (CUDA forbids it)");
  const uint64_t target = enqueued_;
  progress_.wait(lock, [&] { return completed_ >= target; });
  if (std::exception_ptr error = std::exchange(error_, nullptr)) std::rethrow_exception(error);
}

bool SimStream::idle() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return completed_ == enqueued_;
}

void SimStream::sleep_jitter() {
  if (!jitter_random_ || jitter_max_delay_us_ == 0) return;
  std::uniform_int_distribution<int> delay(0, jitter_max_delay_us_);
  std::this_thread::sleep_for(std::chrono::microseconds(delay(*jitter_random_)));
}

void SimStream::work() {
  for (;;) {
    Task task;
    bool skip = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to run
      task = std::move(queue_.front());
      queue_.pop_front();
      skip = error_ && !task.control;
    }
    sleep_jitter();
    if (!skip) {
      try {
        task.run();
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
    task = Task{};  // drop what the task captured before the stream counts it as done
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++completed_;
    }
    progress_.notify_all();
  }
}

}  // namespace kiln::sim
