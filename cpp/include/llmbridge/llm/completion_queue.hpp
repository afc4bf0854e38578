// Where finished calls wait for the thread that asked for them.
//
// The I/O thread pushes results; the waiting side (an asyncio loop) watches fd() and
// drains everything that is ready in one go. The eventfd is written only when the
// queue goes from empty to non-empty, so a burst of N results costs one wake-up.
#pragma once

#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "llmbridge/llm/attempt.hpp"

namespace llmbridge::llm {

class CompletionQueue {
 public:
  using Item = std::pair<std::uint64_t, Attempt>;  // (caller's token, result)

  CompletionQueue();  // throws std::system_error when no eventfd can be made
  ~CompletionQueue();
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  // Readable (level-triggered) while results are waiting.
  int fd() const noexcept { return fd_; }
  // Thread-safe.
  void push(std::uint64_t token, Attempt attempt);
  // Takes every waiting result and resets the eventfd.
  std::vector<Item> drain();

 private:
  std::mutex mu_;
  std::vector<Item> items_;
  int fd_ = -1;
};

}  // namespace llmbridge::llm
