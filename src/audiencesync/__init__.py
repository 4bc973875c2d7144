"""audiencesync: Meta Custom Audiences and offline conversions, run by the business itself."""

__version__ = "0.1.0"
