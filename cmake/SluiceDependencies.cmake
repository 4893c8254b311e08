# Finds sluice's four dependencies, all from distribution packages. Each one
# that is missing or too old stops the configure step with the package name.

find_package(PkgConfig)

# llhttp >= 9.2.1: older releases have public request-smuggling CVEs
# (CVE-2024-27982, CVE-2025-23167). Its CMake package carries no version file,
# so the version comes from pkg-config.
set(SLUICE_LLHTTP_MIN 9.2.1)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(LLHTTP QUIET IMPORTED_TARGET libllhttp)
endif()
if(NOT LLHTTP_FOUND)
  message(FATAL_ERROR
    "llhttp not found. Install libllhttp-dev (>= ${SLUICE_LLHTTP_MIN}); on Debian 12 run "
    "tools/setup.sh, which fetches Debian 13's libllhttp-dev and libllhttp9.2.")
endif()
if(LLHTTP_VERSION VERSION_LESS SLUICE_LLHTTP_MIN)
  message(FATAL_ERROR
    "llhttp ${LLHTTP_VERSION} is too old: sluice needs >= ${SLUICE_LLHTTP_MIN} "
    "(older versions allow request smuggling). Install a newer libllhttp-dev (tools/setup.sh).")
endif()
message(STATUS "llhttp ${LLHTTP_VERSION}")

find_package(OpenSSL 3.0)
if(NOT OpenSSL_FOUND)
  message(FATAL_ERROR "OpenSSL >= 3.0 not found. Install libssl-dev.")
endif()

# c-ares: asynchronous DNS for upstream server names (the resolver curl and
# Envoy use), so no lookup ever blocks an event loop.
if(PKG_CONFIG_FOUND)
  pkg_check_modules(CARES QUIET IMPORTED_TARGET libcares>=1.16)
endif()
if(NOT CARES_FOUND)
  message(FATAL_ERROR "c-ares >= 1.16 not found. Install libc-ares-dev.")
endif()
message(STATUS "c-ares ${CARES_VERSION}")

find_package(yaml-cpp 0.7 QUIET)
if(NOT yaml-cpp_FOUND)
  message(FATAL_ERROR "yaml-cpp >= 0.7 not found. Install libyaml-cpp-dev.")
endif()
# yaml-cpp 0.7 exports `yaml-cpp`; 0.8 exports `yaml-cpp::yaml-cpp`.
if(TARGET yaml-cpp::yaml-cpp)
  set(SLUICE_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(SLUICE_YAML_TARGET yaml-cpp)
endif()

if(SLUICE_BUILD_TESTS)
  find_package(GTest 1.10 QUIET)
  if(NOT GTest_FOUND)
    message(FATAL_ERROR "GoogleTest not found. Install libgtest-dev (and libgmock-dev).")
  endif()
endif()

find_package(Threads REQUIRED)
