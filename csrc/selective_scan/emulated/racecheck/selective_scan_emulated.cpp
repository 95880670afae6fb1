// The race-checking build (mmmsvmamba._C_emulated_racecheck) compiles ../selective_scan_emulated.cpp again,
// instrumented; a file of its own gives its object a path apart from the plain build's.
#include "../selective_scan_emulated.cpp"
