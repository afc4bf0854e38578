// The CA bundle fallback: libcurl's compiled-in file when it exists, else the first
// well-known system location that does (what a wheel's Debian libcurl needs on RHEL).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>

#include "llmbridge/http/ca_bundle.hpp"

using llmbridge::http::known_ca_bundles;
using llmbridge::http::pick_ca_bundle;
using llmbridge::http::system_ca_bundle;

namespace {

// A private directory with a PEM-named file in it, removed at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/llmbridge-ca-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string file(const std::string& name) const {
    std::string p = path + "/" + name;
    std::ofstream(p) << "-----BEGIN CERTIFICATE-----\n";
    return p;
  }
};

}  // namespace

TEST_CASE("CA bundle: the compiled-in file is kept when it exists", "[ca_bundle]") {
  TempDir dir;
  const std::string compiled = dir.file("compiled.pem");
  const std::string other = dir.file("other.pem");
  CHECK(pick_ca_bundle(compiled, {other}) == compiled);
}

TEST_CASE("CA bundle: a missing compiled-in file falls back to the first existing one",
          "[ca_bundle]") {
  TempDir dir;
  const std::string second = dir.file("second.pem");
  const std::string third = dir.file("third.pem");
  CHECK(pick_ca_bundle(dir.path + "/ca-certificates.crt",
                       {dir.path + "/first.pem", second, third}) == second);
}

TEST_CASE("CA bundle: with nothing found libcurl's own path stays, so its error names it",
          "[ca_bundle]") {
  TempDir dir;
  const std::string missing = dir.path + "/ca-certificates.crt";
  CHECK(pick_ca_bundle(missing, {dir.path + "/a.pem", dir.path}) == missing);  // a dir is no file
  CHECK(pick_ca_bundle("", {dir.file("x.pem")}).empty());  // no compiled default: none to replace
}

TEST_CASE("CA bundle: the system's is one of the known files, or libcurl's own", "[ca_bundle]") {
  const std::string& picked = system_ca_bundle();
  CHECK(&picked == &system_ca_bundle());  // worked out once
  if (!picked.empty() && access(picked.c_str(), R_OK) == 0) {
    const auto& known = known_ca_bundles();
    // Debian's libcurl (this build machine's) looks at the first known location itself.
    CHECK(picked == known.front());
  }
}
