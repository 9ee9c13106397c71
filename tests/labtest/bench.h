// labtest --bench: the crate's latency, throughput, catch-up and behaviour
// under churn, measured on the stand-in (README, "Benchmark").
#pragma once

#include <cstdint>

#include "framework.h"

namespace standin {

// Prints the benchmark table on stdout. Call on a virtual thread in virtual
// time. `churn_seeds` churn scenarios of 20 s each, seeds seed+1000...
int RunBench(const Config& config, uint64_t seed, int churn_seeds);

}  // namespace standin
