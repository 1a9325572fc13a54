/*
 * plot.h - turns metric time series (CSV from `sim run --csv`) into plots
 * with gnuplot.
 */
#ifndef SP_PLOT_H
#define SP_PLOT_H

#include "sp_error.h"

/*
 * Plots pages saved (pages_sharing + ksm_zero_pages) and the oracle's bound
 * over time from csv into out (.png or .svg by extension), through gnuplot.
 * out appears only when gnuplot succeeded.  SP_ENOTSUP if gnuplot is missing.
 */
int plot_timeseries(const char *csv, const char *out, const char *title, struct sp_err *err);

#endif
