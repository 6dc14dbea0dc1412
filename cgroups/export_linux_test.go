package cgroups

// ForkBombSample is forkBombSample for the external tests of this package.
var ForkBombSample = forkBombSample
