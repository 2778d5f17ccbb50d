#!/usr/bin/env bash
# Regenerates crs-reference.csv and crs-reference-proj.tsv beside this script with PROJ's cs2cs
# (Debian 12: apt-get install proj-bin, PROJ 9.1.1).
# Usage: bash geo-core/tests/data/crs-reference.sh
#
# crs-reference.csv: built-in EPSG systems.
# Columns: crs, lat, lon (WGS 84 degrees), x, y (the CRS's coordinates; lon/lat degrees for a geographic
# CRS), given, check. A point given as lat/lon (`fwd`, given=latlon) is projected with
# `cs2cs -f %.4f EPSG:4326 EPSG:NNNN`; a point given as x/y (`inv`, given=xy) is converted with
# `cs2cs -f %.10f EPSG:NNNN EPSG:4326`. The result is then converted back with cs2cs: `check` is
# `both` when that lands within 1 cm / 1e-7 degree of the input, else `from_wgs84` or `to_wgs84` (only
# the computed direction holds: near the Mekong delta blocks PROJ picks a different VN-2000 -> WGS 84
# transformation in each direction, see geo-core/src/crs.rs).
set -euo pipefail
command -v cs2cs >/dev/null || { echo "cs2cs not found: apt-get install proj-bin" >&2; exit 1; }
cd "$(dirname "$0")"
cs2cs 2>&1 | head -1 | grep -q "Rel. 9.1.1" || echo "warning: not PROJ 9.1.1: $(cs2cs 2>&1 | head -1)" >&2

geographic() { [ "$1" = 4326 ] || [ "$1" = 4756 ]; }

# to_crs CRS LAT LON -> "x y" (lon lat for a geographic CRS).
to_crs() {
    if geographic "$1"; then
        echo "$2 $3" | cs2cs -f %.10f EPSG:4326 "EPSG:$1" | awk '{print $2, $1}'
    else
        echo "$2 $3" | cs2cs -f %.4f EPSG:4326 "EPSG:$1" | awk '{print $1, $2}'
    fi
}

# to_wgs84 CRS X Y -> "lat lon".
to_wgs84() {
    if geographic "$1"; then
        echo "$3 $2" | cs2cs -f %.10f "EPSG:$1" EPSG:4326 | awk '{print $1, $2}'
    else
        echo "$2 $3" | cs2cs -f %.10f "EPSG:$1" EPSG:4326 | awk '{print $1, $2}'
    fi
}

# near A B C D TOL: |A-C| <= TOL and |B-D| <= TOL.
near() { awk -v a="$1" -v b="$2" -v c="$3" -v d="$4" -v t="$5" \
    'BEGIN { x = a - c; y = b - d; exit !((x < 0 ? -x : x) <= t && (y < 0 ? -y : y) <= t) }'; }

tol_xy() { if geographic "$1"; then echo 1e-7; else echo 0.01; fi; }

# fwd CRS LAT LON: a point given in WGS 84.
fwd() {
    local xy back check=both
    read -r -a xy <<<"$(to_crs "$1" "$2" "$3")"
    read -r -a back <<<"$(to_wgs84 "$1" "${xy[0]}" "${xy[1]}")"
    near "$2" "$3" "${back[0]}" "${back[1]}" 1e-7 || check=from_wgs84
    echo "EPSG:$1,$2,$3,${xy[0]},${xy[1]},latlon,$check"
}

# inv CRS X Y: a point given in the CRS.
inv() {
    local ll back check=both
    read -r -a ll <<<"$(to_wgs84 "$1" "$2" "$3")"
    read -r -a back <<<"$(to_crs "$1" "${ll[0]}" "${ll[1]}")"
    near "$2" "$3" "${back[0]}" "${back[1]}" "$(tol_xy "$1")" || check=to_wgs84
    echo "EPSG:$1,${ll[0]},${ll[1]},$2,$3,xy,$check"
}

{
echo "crs,lat,lon,x,y,given,check"
# The first 23 rows are the project's original reference values (same commands, same PROJ).
fwd 9218 12.5 108.1; fwd 9218 12.95 108.65; fwd 9218 13.3 108.4
fwd 9217 12.2 108.05; fwd 9217 11.9 108.4
fwd 9216 11.55 107.6; fwd 9216 11.95 107.8
fwd 9211 10.8 106.6; fwd 9211 10.35 106.1
fwd 9209 21.03 105.85; fwd 9209 20.8 105.4
fwd 5897 16.05 108.2; fwd 5897 15.5 108.0
fwd 3405 10.8 106.7; fwd 3405 21.0 105.8
fwd 3406 12.25 109.19; fwd 3406 16.05 108.22
fwd 32648 10.8 106.7; fwd 32648 12.67 104.0
fwd 32649 12.68 108.05; fwd 32649 16.05 108.22
fwd 3857 12.68 108.05; fwd 3857 0.0 0.0

# Every VN-2000 TM-3 zone: points inside the zone and outside it (2-4 degrees from the central meridian).
fwd 9205 22.3 103.2; fwd 9205 21.4 102.9; fwd 9205 21.0 105.8; inv 9205 520000 2450000
fwd 9206 21.3 103.9; fwd 9206 21.0 104.3; fwd 9206 20.0 106.5; inv 9206 480000 2380000
fwd 9207 22.4 104.0; fwd 9207 9.95 104.8; fwd 9207 16.0 108.2; inv 9207 510000 1100000
fwd 9208 9.18 105.15; fwd 9208 10.0 104.9; fwd 9208 12.0 108.0; inv 9208 530000 2300000
fwd 9209 20.0 105.6; fwd 9209 11.0 107.9; fwd 9209 10.5 105.9; inv 9209 470000 1180000
fwd 9210 10.03 105.78; fwd 9210 9.6 105.97; fwd 9210 21.0 108.3; inv 9210 490000 2230000
fwd 9211 14.0 108.9; fwd 9211 21.6 105.8; inv 9211 505000 2400000
fwd 9212 10.24 106.37; fwd 9212 9.9 106.3; fwd 9212 16.5 107.6; fwd 9212 12.0 108.5; inv 9212 520000 1300000
fwd 9213 20.86 106.68; fwd 9213 10.53 106.4; fwd 9213 23.0 103.0; inv 9213 480000 2420000
fwd 9214 10.35 107.08; fwd 9214 21.0 107.3; fwd 9214 8.6 104.7; inv 9214 450000 1850000
fwd 9215 16.46 107.59; fwd 9215 11.5 107.0; fwd 9215 12.2 109.2; inv 9215 520000 2440000
fwd 9216 16.8 107.1; fwd 9216 22.8 105.0; inv 9216 540000 1600000
fwd 9217 14.35 108.0; fwd 9217 10.0 105.0; inv 9217 560000 1400000
fwd 9218 11.94 108.44; fwd 9218 21.0 105.8; inv 9218 500000 1400000; inv 9218 450000 1500000
fwd 5896 22.0 102.5; fwd 5896 21.4 103.0; fwd 5896 18.0 105.5; inv 5896 470000 2400000
fwd 5897 21.0 105.0; fwd 5897 9.2 105.2; fwd 5897 10.5 105.5; inv 5897 600000 1000000
fwd 5898 15.5 108.1; fwd 5898 12.0 108.3; fwd 5898 21.0 105.8; fwd 5898 10.2 106.9; inv 5898 540000 1650000
fwd 5899 16.07 108.22; fwd 5899 15.0 107.8; fwd 5899 10.0 105.0; fwd 5899 10.7 106.6; inv 5899 480000 1750000

# VN-2000 UTM zones, inside and outside their 6-degree zone.
fwd 3405 8.6 104.7; fwd 3405 16.0 108.2; fwd 3405 12.2 109.2; inv 3405 400000 2500000
fwd 3406 11.0 108.9; fwd 3406 10.8 106.7; inv 3406 250000 1800000

# The Mekong delta blocks DBSCL 02 and 03 (9.35..11.04 N, 104.24..107.11 E): inside, just outside, and
# where PROJ's choice differs between the two directions.
fwd 3405 9.36 104.25; fwd 3405 9.34 104.25; fwd 3405 10.0 107.10; fwd 3405 10.0 107.12
fwd 9209 11.03 106.0; fwd 9209 11.05 106.0
inv 3405 731450.2169 1216909.0055; inv 3405 730003.3423 1106257.0149
inv 9208 610000 1150000; inv 9210 700000 1180000

# VN-2000 geographic.
fwd 4756 12.68 108.05; fwd 4756 21.0 105.8; fwd 4756 10.8 106.7; inv 4756 106.2 9.8

# WGS 84 and its UTM zones (48N/49N, and others north and south).
fwd 4326 12.68 108.05; fwd 4326 -33.9 151.2
fwd 32648 21.0 105.8; fwd 32648 12.2 109.2; inv 32648 600000 1500000
fwd 32649 12.2 109.2; fwd 32649 10.8 106.7; inv 32649 250000 1800000
fwd 32601 51.9 -176.6; fwd 32633 52.5 13.4; fwd 32650 22.3 114.2; fwd 32660 64.8 177.5
fwd 32701 -14.3 -170.7; fwd 32723 -23.55 -46.63; fwd 32756 -33.87 151.21; inv 32756 334000 6252000

# Web Mercator (spherical).
fwd 3857 21.0 105.8; fwd 3857 -33.9 151.2; fwd 3857 85.0 -179.0; inv 3857 11800000 2400000
} >crs-reference.csv

# crs-reference-proj.tsv: systems given as PROJ strings, tab-separated: proj, lat, lon, x, y, given
# (as above, without `check`: both directions hold for all of them).
# `fwd` rows: echo "LON LAT" | cs2cs -f %.4f (%.10f for longlat) +proj=longlat +datum=WGS84 +to PROJ-STRING
# `inv` rows: echo "X Y" | cs2cs -f %.10f PROJ-STRING +to +proj=longlat +datum=WGS84
pfwd() {
    local def=$1 lat=$2 lon=$3 xy format=%.4f
    case $def in +proj=longlat*) format=%.10f ;; esac
    # shellcheck disable=SC2086
    xy=$(echo "$lon $lat" | cs2cs -f $format +proj=longlat +datum=WGS84 +to $def | awk '{print $1 "\t" $2}')
    printf '%s\t%s\t%s\t%b\tlatlon\n' "$def" "$lat" "$lon" "$xy"
}
pinv() {
    local def=$1 x=$2 y=$3 ll
    # shellcheck disable=SC2086
    ll=$(echo "$x $y" | cs2cs -f %.10f $def +to +proj=longlat +datum=WGS84 | awk '{print $2 "\t" $1}')
    printf '%s\t%b\t%s\t%s\txy\n' "$def" "$ll" "$x" "$y"
}
VN="-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,0.00427372,0.252906278"
{
printf 'proj\tlat\tlon\tx\ty\tgiven\n'
pfwd "+proj=tmerc +lat_0=0 +lon_0=108.5 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 +towgs84=$VN +units=m +no_defs +type=crs" 12.7 108.3
pfwd "+proj=tmerc +lat_0=0 +lon_0=108.5 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 +towgs84=$VN +units=m +no_defs +type=crs" 10.5 106.5
pfwd "+proj=utm +zone=48 +ellps=WGS84 +towgs84=$VN +units=m +no_defs +type=crs" 10.8 106.7
pfwd "+proj=longlat +ellps=WGS84 +towgs84=$VN +no_defs +type=crs" 10.8 106.7
pfwd "+proj=tmerc +lat_0=10 +lon_0=107 +k_0=0.9999 +x_0=200000 +y_0=100000 +ellps=GRS80 +towgs84=-191.9,-39.3,-111.45 +units=m" 12.3 107.6
pinv "+proj=tmerc +lat_0=10 +lon_0=107 +k_0=0.9999 +x_0=200000 +y_0=100000 +ellps=GRS80 +towgs84=-191.9,-39.3,-111.45 +units=m" 150000 500000
pfwd "+proj=tmerc +lon_0=108.5 +k=0.9999 +x_0=500000 +a=6378137 +rf=298.257223563 +towgs84=$VN" 13.3 108.4
pfwd "+proj=etmerc +lon_0=105 +k=0.9996 +x_0=500000 +datum=WGS84" 21.0 105.8
pfwd "+proj=utm +zone=48 +south +datum=WGS84 +units=m +no_defs" -5.0 104.0
pinv "+proj=utm +zone=48 +south +datum=WGS84 +units=m +no_defs" 300000 9100000
pfwd "+proj=merc +lat_ts=12 +lon_0=100 +x_0=1000 +y_0=-500 +datum=WGS84" 12.3 107.6
pinv "+proj=merc +lat_ts=12 +lon_0=100 +x_0=1000 +y_0=-500 +datum=WGS84" 800000 2000000
pfwd "+proj=merc +k=0.99 +ellps=WGS84" -40.0 -60.0
pfwd "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +wktext +no_defs +type=crs" 12.68 108.05
pfwd "+proj=tmerc +R=6371000 +lon_0=108 +x_0=500000" 16.0 109.0
pinv "+proj=tmerc +R=6371000 +lon_0=108 +x_0=500000" 400000 2000000
pfwd "+proj=tmerc +a=6377276.345 +rf=300.8017 +lon_0=105 +k=0.9999 +x_0=500000 +towgs84=198,881,317" 21.0 105.8
} >crs-reference-proj.tsv
