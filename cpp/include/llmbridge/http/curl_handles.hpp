// Move-only owners for libcurl resources: each handle has exactly one cleanup site,
// the deleter below, so no code path can leak or double-free one.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string>

namespace llmbridge::http {

struct MultiCleanup {
  void operator()(CURLM* multi) const noexcept { curl_multi_cleanup(multi); }
};
struct EasyCleanup {
  void operator()(CURL* easy) const noexcept { curl_easy_cleanup(easy); }
};
struct SListCleanup {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};

using MultiHandle = std::unique_ptr<CURLM, MultiCleanup>;
using EasyHandle = std::unique_ptr<CURL, EasyCleanup>;

// A curl_slist of header lines. curl keeps a pointer to the list while a transfer
// runs, so the owner must outlive the transfer.
class HeaderList {
 public:
  // False when curl could not allocate; the list built so far stays valid.
  bool append(const std::string& line) {
    curl_slist* head = curl_slist_append(list_.get(), line.c_str());
    if (head == nullptr) return false;
    static_cast<void>(list_.release());  // curl appended in place; `head` owns it all
    list_.reset(head);
    return true;
  }
  curl_slist* get() const noexcept { return list_.get(); }
  void clear() noexcept { list_.reset(); }

 private:
  std::unique_ptr<curl_slist, SListCleanup> list_;
};

}  // namespace llmbridge::http
