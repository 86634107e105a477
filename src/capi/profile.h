#pragma once
// The C API's profile handle (tq_profile): a loaded calibration profile, read by the CPU and
// device caches' configuration (cache_config.h) and by tq_cache_load_profile.
#include "turboquant/c_api.h"
#include "turboquant/kv_profile.h"

struct tq_profile {
  tq::KvProfile profile;
};
