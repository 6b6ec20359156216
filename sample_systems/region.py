"""Guangdong division codes for synthetic resident ID numbers and addresses.

Every code here is current: the 124 county-level codes of the National Bureau of Statistics 2023
list (统计用区划代码) plus the nine prefecture codes 440100-440900, which python-stdnum's dated
table (stdnum/cn/loc.dat) lists without dates. ``first_year`` is the year loc.dat gives the
code's current name from (0 for undated). No current county-level code is dated before 1983 in
loc.dat, so a person is given a code whose first year is not after their birth year: people born
before 1983 get one of the undated prefecture codes. Such numbers pass even a checker that
applies the dated table by birth year (raw ``stdnum.cn.ric.validate``), and OneHub's own policy
(catalog_schemas.holder), which ignores first years.

Embedded rather than read from the installed python-stdnum so that a newer loc.dat cannot change
generated data (the generator promises byte-identical output for a seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

# (code, prefecture city, county (empty for a prefecture code or a city without counties),
#  first year)
REGIONS: Final[tuple[tuple[str, str, str, int], ...]] = (
    ("440100", "广州市", "", 0),
    ("440200", "韶关市", "", 0),
    ("440300", "深圳市", "", 0),
    ("440400", "珠海市", "", 0),
    ("440500", "汕头市", "", 0),
    ("440600", "佛山市", "", 0),
    ("440700", "江门市", "", 0),
    ("440800", "湛江市", "", 0),
    ("440900", "茂名市", "", 0),
    ("440103", "广州市", "荔湾区", 1983),
    ("440104", "广州市", "越秀区", 1983),
    ("440105", "广州市", "海珠区", 1983),
    ("440106", "广州市", "天河区", 1985),
    ("440111", "广州市", "白云区", 1987),
    ("440112", "广州市", "黄埔区", 1983),
    ("440113", "广州市", "番禺区", 2000),
    ("440114", "广州市", "花都区", 2000),
    ("440115", "广州市", "南沙区", 2005),
    ("440117", "广州市", "从化区", 2014),
    ("440118", "广州市", "增城区", 2014),
    ("440203", "韶关市", "武江区", 1984),
    ("440204", "韶关市", "浈江区", 1984),
    ("440205", "韶关市", "曲江区", 2004),
    ("440222", "韶关市", "始兴县", 1983),
    ("440224", "韶关市", "仁化县", 1983),
    ("440229", "韶关市", "翁源县", 1983),
    ("440232", "韶关市", "乳源瑶族自治县", 1983),
    ("440233", "韶关市", "新丰县", 1988),
    ("440281", "韶关市", "乐昌市", 1994),
    ("440282", "韶关市", "南雄市", 1996),
    ("440303", "深圳市", "罗湖区", 1990),
    ("440304", "深圳市", "福田区", 1990),
    ("440305", "深圳市", "南山区", 1990),
    ("440306", "深圳市", "宝安区", 1992),
    ("440307", "深圳市", "龙岗区", 1992),
    ("440308", "深圳市", "盐田区", 1997),
    ("440309", "深圳市", "龙华区", 2016),
    ("440310", "深圳市", "坪山区", 2016),
    ("440311", "深圳市", "光明区", 2018),
    ("440402", "珠海市", "香洲区", 1984),
    ("440403", "珠海市", "斗门区", 2001),
    ("440404", "珠海市", "金湾区", 2001),
    ("440507", "汕头市", "龙湖区", 1991),
    ("440511", "汕头市", "金平区", 2003),
    ("440512", "汕头市", "濠江区", 2003),
    ("440513", "汕头市", "潮阳区", 2003),
    ("440514", "汕头市", "潮南区", 2003),
    ("440515", "汕头市", "澄海区", 2003),
    ("440523", "汕头市", "南澳县", 1983),
    ("440604", "佛山市", "禅城区", 2002),
    ("440605", "佛山市", "南海区", 2002),
    ("440606", "佛山市", "顺德区", 2002),
    ("440607", "佛山市", "三水区", 2002),
    ("440608", "佛山市", "高明区", 2002),
    ("440703", "江门市", "蓬江区", 1994),
    ("440704", "江门市", "江海区", 1994),
    ("440705", "江门市", "新会区", 2002),
    ("440781", "江门市", "台山市", 1992),
    ("440783", "江门市", "开平市", 1993),
    ("440784", "江门市", "鹤山市", 1993),
    ("440785", "江门市", "恩平市", 1994),
    ("440802", "湛江市", "赤坎区", 1984),
    ("440803", "湛江市", "霞山区", 1984),
    ("440804", "湛江市", "坡头区", 1984),
    ("440811", "湛江市", "麻章区", 1994),
    ("440823", "湛江市", "遂溪县", 1983),
    ("440825", "湛江市", "徐闻县", 1983),
    ("440881", "湛江市", "廉江市", 1993),
    ("440882", "湛江市", "雷州市", 1994),
    ("440883", "湛江市", "吴川市", 1994),
    ("440902", "茂名市", "茂南区", 1985),
    ("440904", "茂名市", "电白区", 2014),
    ("440981", "茂名市", "高州市", 1993),
    ("440982", "茂名市", "化州市", 1994),
    ("440983", "茂名市", "信宜市", 1995),
    ("441202", "肇庆市", "端州区", 1988),
    ("441203", "肇庆市", "鼎湖区", 1988),
    ("441204", "肇庆市", "高要区", 2015),
    ("441223", "肇庆市", "广宁县", 1988),
    ("441224", "肇庆市", "怀集县", 1988),
    ("441225", "肇庆市", "封开县", 1988),
    ("441226", "肇庆市", "德庆县", 1988),
    ("441284", "肇庆市", "四会市", 1993),
    ("441302", "惠州市", "惠城区", 1988),
    ("441303", "惠州市", "惠阳区", 2003),
    ("441322", "惠州市", "博罗县", 1988),
    ("441323", "惠州市", "惠东县", 1988),
    ("441324", "惠州市", "龙门县", 1988),
    ("441402", "梅州市", "梅江区", 1988),
    ("441403", "梅州市", "梅县区", 2013),
    ("441422", "梅州市", "大埔县", 1988),
    ("441423", "梅州市", "丰顺县", 1988),
    ("441424", "梅州市", "五华县", 1988),
    ("441426", "梅州市", "平远县", 1988),
    ("441427", "梅州市", "蕉岭县", 1988),
    ("441481", "梅州市", "兴宁市", 1994),
    ("441502", "汕尾市", "城区", 1988),
    ("441521", "汕尾市", "海丰县", 1988),
    ("441523", "汕尾市", "陆河县", 1988),
    ("441581", "汕尾市", "陆丰市", 1995),
    ("441602", "河源市", "源城区", 1988),
    ("441621", "河源市", "紫金县", 1988),
    ("441622", "河源市", "龙川县", 1988),
    ("441623", "河源市", "连平县", 1988),
    ("441624", "河源市", "和平县", 1988),
    ("441625", "河源市", "东源县", 1993),
    ("441702", "阳江市", "江城区", 1988),
    ("441704", "阳江市", "阳东区", 2014),
    ("441721", "阳江市", "阳西县", 1988),
    ("441781", "阳江市", "阳春市", 1994),
    ("441802", "清远市", "清城区", 1988),
    ("441803", "清远市", "清新区", 2012),
    ("441821", "清远市", "佛冈县", 1988),
    ("441823", "清远市", "阳山县", 1988),
    ("441825", "清远市", "连山壮族瑶族自治县", 1988),
    ("441826", "清远市", "连南瑶族自治县", 1988),
    ("441881", "清远市", "英德市", 1994),
    ("441882", "清远市", "连州市", 1994),
    ("441900", "东莞市", "", 1988),
    ("442000", "中山市", "", 1988),
    ("445102", "潮州市", "湘桥区", 1991),
    ("445103", "潮州市", "潮安区", 2013),
    ("445122", "潮州市", "饶平县", 1991),
    ("445202", "揭阳市", "榕城区", 1991),
    ("445203", "揭阳市", "揭东区", 2012),
    ("445222", "揭阳市", "揭西县", 1991),
    ("445224", "揭阳市", "惠来县", 1991),
    ("445281", "揭阳市", "普宁市", 1993),
    ("445302", "云浮市", "云城区", 1994),
    ("445303", "云浮市", "云安区", 2014),
    ("445321", "云浮市", "新兴县", 1994),
    ("445322", "云浮市", "郁南县", 1994),
    ("445381", "云浮市", "罗定市", 1994),
)


@dataclass(frozen=True)
class RegionTable:
    """The embedded codes as arrays, sorted by first year (a prefix is valid for a birth year)."""

    code: npt.NDArray[np.int64]
    city: npt.NDArray[np.str_]
    county: npt.NDArray[np.str_]
    first_year: npt.NDArray[np.int64]

    def draw(
        self, rng: np.random.Generator, birth_year: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """An index into the table per person, among the codes in use in their birth year."""
        usable = np.searchsorted(self.first_year, birth_year, side="right")
        if np.any(usable == 0):
            raise ValueError("a birth year precedes every embedded division code")
        index: npt.NDArray[np.int64] = np.floor(rng.random(birth_year.size) * usable).astype(
            np.int64
        )
        return index

    def place(self, index: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
        """City and county names joined, e.g. ``广州市天河区``."""
        joined: npt.NDArray[np.str_] = np.strings.add(self.city[index], self.county[index])
        return joined


def region_table() -> RegionTable:
    """The embedded Guangdong codes, ordered by first year then code."""
    ordered = sorted(REGIONS, key=lambda row: (row[3], row[0]))
    return RegionTable(
        code=np.array([int(row[0]) for row in ordered], dtype=np.int64),
        city=np.array([row[1] for row in ordered]),
        county=np.array([row[2] for row in ordered]),
        first_year=np.array([row[3] for row in ordered], dtype=np.int64),
    )
