// One head-dim dispatch: each compiled size reaches its own instantiation, any other size
// is a tq::Error naming the caller, the size and the supported list.
#include <gtest/gtest.h>

#include <string>

#include "turboquant/error.h"
#include "turboquant/head_dim.h"

namespace tq {
namespace {

TEST(HeadDim, DispatchReachesEachCompiledSize) {
  for (int d : kHeadDims) {
    EXPECT_TRUE(head_dim_compiled(d));
    EXPECT_EQ(dispatch_head_dim(d, "test", []<int D>() { return D; }), d);
  }
}

TEST(HeadDim, OtherSizesAreNamedErrors) {
  for (int d : {0, 32, 96, 192, 512}) {
    EXPECT_FALSE(head_dim_compiled(d));
    try {
      dispatch_head_dim(d, "attention kernel", []<int D>() { return D; });
      ADD_FAILURE() << d << " was dispatched";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), "attention kernel: head size " + std::to_string(d) +
                                           " is not supported (supported: 64, 128, 256)");
    }
  }
}

}  // namespace
}  // namespace tq
