"""English date formats of the portal: day first and a 24-hour clock, as in the legacy instruction files.

Django's default English formats are American (12/01/2026 11:54 a.m.), which the universities using the portal
read as the 12th of January. The portal's audience, its time zone and its instruction format are European.
"""

DATE_FORMAT = "j F Y"
DATETIME_FORMAT = "j F Y H:i"
SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
TIME_FORMAT = "H:i"
FIRST_DAY_OF_WEEK = 1  # Monday
