// C API: calibration profiles (tq_profile), the input of the calibrated presets' codecs.
#include "profile.h"

#include "guard.h"

using tq::capi::guarded;
using tq::capi::require;

extern "C" {

tq_status tq_profile_load(const char* path, tq_profile** profile) {
  return guarded("tq_profile_load", [&] {
    require(path, "path");
    require(profile, "profile");
    *profile = new tq_profile{tq::load_profile(path)};
  });
}

void tq_profile_destroy(tq_profile* profile) { delete profile; }

tq_status tq_profile_shape(const tq_profile* profile, int* n_layers, int* n_kv_heads, int* head_dim) {
  return guarded("tq_profile_shape", [&] {
    require(profile, "profile");
    const tq::KvProfile& p = profile->profile;
    if (n_layers) *n_layers = p.n_layers;
    if (n_kv_heads) *n_kv_heads = p.n_kv_heads;
    if (head_dim) *head_dim = p.head_dim;
  });
}

}  // extern "C"
