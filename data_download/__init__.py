"""Data for hepml on day one, without the internet: generators and downloads.

``data_download.generators`` makes Monte Carlo samples for every physics task (Pythia8 + FastJet
events, a parametric LHCb-like particle-ID detector response) and writes them as ROOT files in the
same layout as the experiments' own. ``data_download.downloads`` fetches the public datasets.
Both are reached from the command line as ``hepml data generate`` / ``hepml data download``.
"""
