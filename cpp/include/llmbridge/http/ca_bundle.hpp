// Which file of trusted certificate authorities libcurl reads when the caller names none.
//
// libcurl has the path of the distribution it was built on compiled in (Debian's:
// /etc/ssl/certs/ca-certificates.crt). The wheels carry Debian's libcurl to every
// manylinux_2_34 system, and on RHEL, Fedora, Amazon Linux or openSUSE that file does not
// exist: every https:// call would fail with "error setting certificate file". So when the
// compiled-in file is missing, the engine uses the first of the well-known locations
// that exists (docs/install.md).
#pragma once

#include <string>
#include <vector>

namespace llmbridge::http {

// The system bundles, most common first: Debian/Ubuntu/Arch/Gentoo, RHEL/Fedora/Amazon Linux
// (two names for one file), openSUSE, Alpine/macOS-style.
const std::vector<std::string>& known_ca_bundles();

// `compiled_default` when that file exists (or is empty: libcurl then has no default to
// replace), else the first of `candidates` that is a readable regular file, else
// `compiled_default` (libcurl's own error then names it).
std::string pick_ca_bundle(const std::string& compiled_default,
                           const std::vector<std::string>& candidates);

// pick_ca_bundle(libcurl's compiled-in CURLINFO_CAINFO, known_ca_bundles()), worked out
// once per process.
const std::string& system_ca_bundle();

}  // namespace llmbridge::http
