"""Science both papers use: age-prediction metrics, evaluation splits (stratified, grouped,
repeated), published linear clocks (CpG or gene features) and expression processing (library
size, log transform with unit checks, ComBat, quantile normalisation onto a reference)."""
