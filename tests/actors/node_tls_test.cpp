// check_tls (and enable_distribution, which calls it): every TLS setting
// that cannot work is a node_error at start-up naming the file and what is
// wrong with it, never CAF's abort at the first connection. The
// certificates are made at test time with the openssl command, as
// docs/distribution.md shows.

#include <troupe/actors/node.hpp>

#include <caf/actor_system_config.hpp>

#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

using namespace troupe;

namespace {

// Made once for the suite: RSA keys take a while.
struct certificate_files {
  std::string dir;

  certificate_files() {
    char name[] = "/tmp/troupe-tls-XXXXXX";
    BOOST_REQUIRE(mkdtemp(name) != nullptr);
    dir = name;
    run("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem"
        " -days 30 -subj '/CN=troupe test CA'");
    run("openssl req -newkey rsa:2048 -nodes -keyout a.key -out a.csr"
        " -subj /CN=a");
    run("openssl x509 -req -in a.csr -CA ca.pem -CAkey ca.key"
        " -CAcreateserial -out a.pem -days 30");
    run("openssl req -newkey rsa:2048 -nodes -keyout b.key -out b.csr"
        " -subj /CN=b");
    run("openssl genrsa -aes256 -passout 'pass:open sesame' -out locked.key"
        " 2048");
    run("openssl req -new -key locked.key -passin 'pass:open sesame'"
        " -out locked.csr -subj /CN=locked");
    run("openssl x509 -req -in locked.csr -CA ca.pem -CAkey ca.key"
        " -CAcreateserial -out locked.pem -days 30");
    std::ofstream{path("not-pem.txt")} << "this is not a certificate\n";
    BOOST_REQUIRE(mkdir(path("a-directory").c_str(), 0700) == 0);
  }

  ~certificate_files() {
    std::system(("rm -rf '" + dir + "'").c_str());
  }

  void run(const std::string& command) {
    auto full = "cd '" + dir + "' && " + command + " > /dev/null 2>&1";
    BOOST_REQUIRE_MESSAGE(std::system(full.c_str()) == 0, full);
  }

  std::string path(const std::string& file) const {
    return dir + "/" + file;
  }

};

struct certificates {
  const certificate_files& files;

  certificates() : files(shared()) {
  }

  static const certificate_files& shared() {
    static certificate_files instance;
    return instance;
  }

  std::string path(const std::string& file) const {
    return files.path(file);
  }

  tls_settings valid() const {
    return {path("a.pem"), path("a.key"), "", path("ca.pem")};
  }
};

// The node_error's message; "(accepted)" if check_tls throws nothing.
std::string refusal(const tls_settings& tls) {
  try {
    check_tls(tls);
  } catch (const node_error& e) {
    return e.what();
  }
  return "(accepted)";
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(node_tls, certificates)

BOOST_AUTO_TEST_CASE(valid_settings_and_no_tls_are_accepted) {
  BOOST_TEST(refusal(valid()) == "(accepted)");
  BOOST_TEST(refusal(tls_settings{}) == "(accepted)");
  tls_settings locked{path("locked.pem"), path("locked.key"), "open sesame",
                      path("ca.pem")};
  BOOST_TEST(refusal(locked) == "(accepted)");
}

BOOST_AUTO_TEST_CASE(a_missing_key_is_named) {
  auto tls = valid();
  tls.key.clear();
  auto what = refusal(tls);
  BOOST_TEST(has(what, "no key is set"), what);
  tls = valid();
  tls.key = path("missing.key");
  what = refusal(tls);
  BOOST_TEST(has(what, "cannot read the key file '" + path("missing.key") + "'"),
             what);
}

BOOST_AUTO_TEST_CASE(half_a_tls_setting_is_refused) {
  tls_settings only_passphrase;
  only_passphrase.passphrase = "open sesame";
  auto what = refusal(only_passphrase);
  BOOST_TEST(has(what, "no certificate is set"), what);
  auto no_ca = valid();
  no_ca.cafile.clear();
  what = refusal(no_ca);
  BOOST_TEST(has(what, "no cafile is set"), what);
}

BOOST_AUTO_TEST_CASE(an_unreadable_file_is_named) {
  auto tls = valid();
  tls.certificate = path("a-directory");
  auto what = refusal(tls);
  BOOST_TEST(has(what, "cannot read the certificate file '"
                         + path("a-directory") + "' (a directory)"),
             what);
  // File permissions stop everyone but root.
  if (geteuid() != 0) {
    auto locked_out = path("locked-out.pem");
    std::ofstream{locked_out} << "x";
    BOOST_REQUIRE(chmod(locked_out.c_str(), 0) == 0);
    tls = valid();
    tls.certificate = locked_out;
    what = refusal(tls);
    BOOST_TEST(has(what, "cannot read the certificate file '" + locked_out),
               what);
  }
}

BOOST_AUTO_TEST_CASE(an_encrypted_key_needs_its_passphrase) {
  tls_settings tls{path("locked.pem"), path("locked.key"), "", path("ca.pem")};
  auto what = refusal(tls);
  BOOST_TEST(has(what, "cannot load the private key '" + path("locked.key")),
             what);
  BOOST_TEST(has(what, "is it encrypted? set its passphrase"), what);
  tls.passphrase = "open says me";
  what = refusal(tls);
  BOOST_TEST(has(what, "wrong passphrase"), what);
}

BOOST_AUTO_TEST_CASE(a_key_that_is_not_the_certificates_is_refused) {
  auto tls = valid();
  tls.key = path("b.key");
  auto what = refusal(tls);
  BOOST_TEST(has(what, "the key '" + path("b.key")
                         + "' is not the key of the certificate '"
                         + path("a.pem") + "'"),
             what);
}

BOOST_AUTO_TEST_CASE(files_without_pem_data_are_named) {
  auto tls = valid();
  tls.cafile = path("not-pem.txt");
  auto what = refusal(tls);
  BOOST_TEST(has(what, "the cafile '" + path("not-pem.txt")
                         + "' holds no PEM certificate"),
             what);
  tls = valid();
  tls.certificate = path("not-pem.txt");
  what = refusal(tls);
  BOOST_TEST(has(what, "'" + path("not-pem.txt") + "' holds no PEM certificate"),
             what);
  tls = valid();
  tls.key = path("not-pem.txt");
  what = refusal(tls);
  BOOST_TEST(has(what, "cannot load the private key '" + path("not-pem.txt")),
             what);
}

BOOST_AUTO_TEST_CASE(enable_distribution_throws_before_the_system_exists) {
  caf::actor_system_config cfg;
  node_settings settings;
  settings.tls = valid();
  settings.tls.key = path("b.key");
  BOOST_CHECK_THROW(enable_distribution(cfg, settings), node_error);
}

BOOST_AUTO_TEST_SUITE_END()
