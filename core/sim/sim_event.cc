#include "core/sim/sim_event.h"

#include <chrono>
#include <memory>

#include "core/sim/sim_stream.h"

namespace kiln::sim {

void SimEvent::record(SimStream& stream) {
  auto reached = std::make_shared<std::promise<void>>();
  std::shared_future<void> mark = reached->get_future().share();
  {
    // Set before the task is queued, so a wait_on_event() issued after record() returns sees it.
    std::lock_guard<std::mutex> lock(mutex_);
    reached_ = mark;
  }
  stream.enqueue_control([reached] { reached->set_value(); });
}

std::shared_future<void> SimEvent::mark() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reached_;
}

bool SimEvent::query() const {
  const std::shared_future<void> m = mark();
  return !m.valid() || m.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

void SimEvent::synchronize() const {
  const std::shared_future<void> m = mark();
  if (m.valid()) m.wait();
}

void wait_on_event(SimStream& stream, const SimEvent& event) {
  const std::shared_future<void> m = event.mark();
  if (!m.valid()) return;
  stream.enqueue_control([m] { m.wait(); });
}

}  // namespace kiln::sim
