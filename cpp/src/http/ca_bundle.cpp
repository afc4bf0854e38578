// The CA bundle fallback for a libcurl built on another distribution (ca_bundle.hpp).
#include "llmbridge/http/ca_bundle.hpp"

#include <curl/curl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llmbridge/http/curl_handles.hpp"

namespace llmbridge::http {
namespace {

bool readable_file(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), R_OK) == 0;
}

std::string compiled_ca_bundle() {
#if LIBCURL_VERSION_NUM >= 0x075400  // CURLINFO_CAINFO: 7.84
  EasyHandle easy(curl_easy_init());
  char* path = nullptr;
  if (easy && curl_easy_getinfo(easy.get(), CURLINFO_CAINFO, &path) == CURLE_OK && path)
    return path;
#endif
  return {};
}

}  // namespace

const std::vector<std::string>& known_ca_bundles() {
  static const std::vector<std::string> paths = {
      "/etc/ssl/certs/ca-certificates.crt",
      "/etc/pki/tls/certs/ca-bundle.crt",
      "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
      "/etc/ssl/ca-bundle.pem",
      "/etc/ssl/cert.pem",
  };
  return paths;
}

std::string pick_ca_bundle(const std::string& compiled_default,
                           const std::vector<std::string>& candidates) {
  if (compiled_default.empty() || readable_file(compiled_default)) return compiled_default;
  for (const auto& path : candidates)
    if (readable_file(path)) return path;
  return compiled_default;
}

const std::string& system_ca_bundle() {
  static const std::string path = pick_ca_bundle(compiled_ca_bundle(), known_ca_bundles());
  return path;
}

}  // namespace llmbridge::http
