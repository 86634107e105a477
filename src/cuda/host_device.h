#pragma once
// TQ_HOST_DEVICE: functions that device code and host C++ (tests, descriptors) share.
#if defined(__CUDACC__)
#define TQ_HOST_DEVICE __host__ __device__
#else
#define TQ_HOST_DEVICE
#endif
