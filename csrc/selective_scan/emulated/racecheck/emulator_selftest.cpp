// The race-checking build (mmmsvmamba._C_emulated_racecheck) compiles ../emulator_selftest.cpp again,
// instrumented; a file of its own gives its object a path apart from the plain build's.
#include "../emulator_selftest.cpp"
