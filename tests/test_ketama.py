"""The ketama ring against libmemcached's published weighted-ketama test vectors."""

from __future__ import annotations

import pytest

from webmini.stores.ketama import Ketama, key_hash, points_for, server_label

# libmemcached's weighted ketama test set (test/fixtures/ketama.hpp in
# libmemcached 1.1, the ketama_test_cases table): key, MD5 key hash, the
# continuum point it lands on, and the server owning that point, for the
# servers below with MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED.
SERVERS = {
    "10.0.1.1:11211": 600, "10.0.1.2:11211": 300, "10.0.1.3:11211": 200,
    "10.0.1.4:11211": 350, "10.0.1.5:11211": 1000, "10.0.1.6:11211": 800,
    "10.0.1.7:11211": 950, "10.0.1.8:11211": 100,
}
VECTORS = [
    ('SVa_]_V41)', 443691461, 445379617, '10.0.1.7'),
    ('*/Z;?V(.\\8', 1422915503, 1428303028, '10.0.1.1'),
    ('30C1*Z*S/_', 1473165754, 1480075959, '10.0.1.2'),
    ('ERR:EC58G>', 2148406511, 2168579133, '10.0.1.7'),
    ('1I=cTMNTKF', 2882686667, 2885206587, '10.0.1.5'),
    (']VG<`I*Z8)', 1103544263, 1104827657, '10.0.1.5'),
    ('UUTC`-V159', 3716288206, 3727224240, '10.0.1.5'),
    ('@7RU6C6T+Z', 3862737685, 3871917949, '10.0.1.5'),
    ('/XLN0@+36;', 1623269830, 1627683651, '10.0.1.1'),
    ('4(`X;\\V.^c', 373546328, 383925769, '10.0.1.1'),
    ('726bW=9*a4', 4213440020, 4213950705, '10.0.1.7'),
    ('\\`)<B)UE,c', 951096736, 955226069, '10.0.1.1'),
    ('P1[Ma3=K1/', 1989324036, 1994028240, '10.0.1.8'),
    ('C89I.-V?cT', 1604239957, 1606398093, '10.0.1.8'),
    ('D[HE+cFXDK', 2117036136, 2117124014, '10.0.1.3'),
    ('P1L?NAB[)K', 2129972569, 2132542634, '10.0.1.1'),
    ('cDT0)Z5P6,', 176485284, 178675413, '10.0.1.5'),
    ('@JW`+[WAO8', 2720940826, 2743975456, '10.0.1.5'),
    ('\\39DKW^)N_', 3548879868, 3550704865, '10.0.1.3'),
    ('EM75N0+[X1', 1558531507, 1559308507, '10.0.1.4'),
    ('`,SS]NBP,b', 1883545960, 1884847278, '10.0.1.1'),
    ('XX1a9LT+F?', 653487707, 656410408, '10.0.1.5'),
    ('Zc\\-,F-c6V', 1160802451, 1171575728, '10.0.1.5'),
    ('1*RTMC7,03', 1602398012, 1606398093, '10.0.1.8'),
    ('*Xc+V0P>32', 536016577, 539988520, '10.0.1.7'),
    ('U))Fb-(`,.', 4128682289, 4136854163, '10.0.1.7'),
    ('R-08RNTaRT', 3718170086, 3727224240, '10.0.1.5'),
    ('(LHcO203I3', 1007779411, 1014643570, '10.0.1.5'),
    ('=256P+;Qc8', 3976201210, 3976304873, '10.0.1.5'),
    ('OI5XZ_BBT(', 2155922164, 2168579133, '10.0.1.7'),
    ('2TLRL/UL;:', 1086800909, 1095659802, '10.0.1.7'),
    ('WHD\\O1`ZRW', 3087923411, 3095471560, '10.0.1.5'),
    ('.=54)_c;=T', 2497691631, 2502731301, '10.0.1.1'),
    (';G<W-XWZ@b', 2888169733, 2888728739, '10.0.1.5'),
    ('(,>E`)FT\\4', 580747448, 581063326, '10.0.1.2'),
    ('HZAU*;P*N]', 2564670474, 2565697267, '10.0.1.7'),
    ('NZ@ZE=O84_', 533335275, 539988520, '10.0.1.7'),
    ('6,cEI`F_P>', 3972869246, 3974773167, '10.0.1.6'),
    ('c,5AQ/T5)6', 2835605783, 2847870057, '10.0.1.8'),
    ('.O,>>BT)RX', 3857978174, 3871917949, '10.0.1.5'),
    ('XY\\X::LX50', 1749241099, 1752196488, '10.0.1.6'),
    ('+550F^/.01', 3781824099, 3783248219, '10.0.1.6'),
    ('<.X9E2S5+9', 3232479481, 3234387706, '10.0.1.7'),
    (']\\.UH8_0a1', 2419699252, 2423002920, '10.0.1.4'),
    ('8(6=(T0/Z0', 728266737, 729026070, '10.0.1.7'),
    ('8*6a;Sc*X+', 4223431086, 4230156966, '10.0.1.2'),
    ('<QW:;3K6;H', 2731158143, 2743975456, '10.0.1.5'),
    ('7C@EY@-Y?_', 760770733, 761576669, '10.0.1.5'),
    ('aPb3E1WD4K', 2500489218, 2502731301, '10.0.1.1'),
    ('?@12R<=1BH', 1494795329, 1502505505, '10.0.1.8'),
    ('QR(a+Q=1FU', 3238535074, 3238996435, '10.0.1.6'),
    ('`C9^FV,960', 2628553463, 2628733766, '10.0.1.6'),
    ('UNHVP..^8H', 977096483, 977319837, '10.0.1.4'),
    (':Y.2W2[(35', 2777083668, 2784182515, '10.0.1.7'),
    ('M/HV^_HZ4O', 3623390946, 3624445007, '10.0.1.7'),
    ('ZY16KQ<ICD', 1831153193, 1838563516, '10.0.1.4'),
    ('bV2,`a.PY9', 1962228869, 1962648654, '10.0.1.1'),
    ('U;9:-+5N]9', 269504649, 277560877, '10.0.1.1'),
    ('1S/:aJ[1(;', 578069729, 581063326, '10.0.1.2'),
    ('Nb-X^]M)I:', 330865696, 331009896, '10.0.1.6'),
    ('2;M;ES>J5/', 2776949824, 2784182515, '10.0.1.7'),
    ('[>RZHG97Q9', 71954686, 72034069, '10.0.1.6'),
    ('J3/G[)9<^Z', 2799896459, 2805183696, '10.0.1.7'),
    ('N-)88>[O`,', 50404102, 51792557, '10.0.1.5'),
    ('NP:=FR\\OaA', 3837333776, 3837792034, '10.0.1.7'),
    ('`@L+W;a,O[', 1512157148, 1522285852, '10.0.1.6'),
    ('W2`P:-+1T[', 2945171975, 2946196424, '10.0.1.5'),
    ('-6G7K^YDIN', 3168617340, 3170513015, '10.0.1.7'),
    ('U>*>9ZI6V5', 668514946, 674097631, '10.0.1.6'),
    ('.I?^6Ic9RK', 938419020, 942832691, '10.0.1.6'),
    ('0OZH^9BKM[', 3682518606, 3686781297, '10.0.1.8'),
    ('5?50UGZ:ML', 868610882, 869425986, '10.0.1.5'),
    ('?K2NF@3=IU', 381218851, 383925769, '10.0.1.1'),
    ('YI@G-2X?UB', 3688706179, 3693197681, '10.0.1.5'),
    ('7cY</BSaL=', 3976870223, 3978903843, '10.0.1.6'),
    ('A(`KF:[RH8', 3292979676, 3294849139, '10.0.1.6'),
    (';=ZT\\W^P+H', 1401102653, 1416290674, '10.0.1.4'),
    ('b2?WFF56;R', 480494704, 486971192, '10.0.1.4'),
    ('CTR74,J+N.', 137446045, 146633907, '10.0.1.8'),
    ('<b;*R+QDST', 1304985302, 1308223778, '10.0.1.5'),
    ('\\R^7=9UCG`', 126218373, 129199837, '10.0.1.5'),
    ('1bQS5]WOXB', 1853470245, 1855329369, '10.0.1.4'),
    ('M(@X^b[L:K', 3019630308, 3022260113, '10.0.1.1'),
    ('431cBF8,YO', 1679726993, 1685224295, '10.0.1.7'),
    ('(bEIQJ:E./', 2922607787, 2925521819, '10.0.1.6'),
    ('WS/3H*)7F;', 419488232, 422140585, '10.0.1.5'),
    ('ZJF[Ia6Q)+', 3960568056, 3962489998, '10.0.1.7'),
    ('<]*QCK8U,>', 2590140172, 2598117636, '10.0.1.7'),
    ('\\[a\\^=V_M0', 689410119, 698690782, '10.0.1.6'),
    ('7;RM+8J9YC', 1530175299, 1531107082, '10.0.1.7'),
    ('4*=.SPR[AV', 3928582722, 3928853792, '10.0.1.1'),
    ('-2F+^88P4U', 3023552752, 3025823613, '10.0.1.7'),
    ('X;-F`(N?9D', 570465234, 572485994, '10.0.1.7'),
    ('R=F_D-K2a]', 1287750228, 1290935562, '10.0.1.7'),
    ('X*+2aaC.EG', 3200948713, 3201088518, '10.0.1.5'),
    ('[1ZXONX2]a', 4108881567, 4109865744, '10.0.1.4'),
    ('FL;\\GWacaV', 458449508, 467374054, '10.0.1.4'),
    ('\\MQ_XNT7L-', 1259349383, 1259509450, '10.0.1.7'),
    ('VD6D0]ba_\\', 3842502950, 3842588691, '10.0.1.1'),
]


@pytest.fixture(scope="module")
def ring() -> Ketama:
    return Ketama(SERVERS)


def test_vectors_are_complete() -> None:
    assert len(VECTORS) == 99


@pytest.mark.parametrize(("key", "hash1", "point", "server"), VECTORS)
def test_libmemcached_vectors(ring: Ketama, key: str, hash1: int, point: int, server: str) -> None:
    assert key_hash(key) == hash1
    assert ring.point_for(key) == point
    assert ring.node_for(key) == server + ":11211"


def test_wraparound_goes_to_first_point(ring: Ketama) -> None:
    # From the same libmemcached test: "VDEAAAAA" hashes past the last point.
    assert key_hash("VDEAAAAA") == 0xFFFCD1B5
    first_point, first_node = ring.points()[0]
    assert key_hash("VDEAAAAA") > ring.points()[-1][0]
    assert ring.point_for("VDEAAAAA") == first_point
    assert ring.node_for("VDEAAAAA") == first_node


def test_weighted_point_counts(ring: Ketama) -> None:
    counts: dict[str, int] = {}
    for _, node in ring.points():
        counts[node] = counts.get(node, 0) + 1
    # floor(weight / 4300 * 40 * 8) * 4, as libmemcached computes it.
    assert counts == {
        "10.0.1.1:11211": 176, "10.0.1.2:11211": 88, "10.0.1.3:11211": 56,
        "10.0.1.4:11211": 104, "10.0.1.5:11211": 296, "10.0.1.6:11211": 236,
        "10.0.1.7:11211": 280, "10.0.1.8:11211": 28,
    }
    assert len(ring) == 1264


def test_equal_weights_give_160_points_each() -> None:
    ring = Ketama(["127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11213"])
    assert len(ring) == 480
    assert points_for(1, 3, 3) == 160
    assert points_for(7, 7, 1) == 160


def test_single_precision_rounding() -> None:
    # 1/3 * 40 * 3 is 40.000002 in float: 160 points, not 156.
    assert points_for(1, 3, 3) == 160
    # Five servers, weight 1 of 25: 0.04f * 160 / 4 * 5 is 7.9999995 in float,
    # so libmemcached gives 28 points where exact arithmetic would give 32.
    assert points_for(1, 25, 5) == 28
    assert points_for(5, 25, 5) == 160


def test_server_label_follows_libmemcached() -> None:
    assert server_label("10.0.0.1:11211") == "10.0.0.1"
    assert server_label("10.0.0.1") == "10.0.0.1"
    assert server_label("10.0.0.1:11212") == "10.0.0.1:11212"
    assert server_label("[::1]:11212") == "::1:11212"


def test_bytes_and_str_keys_hash_alike(ring: Ketama) -> None:
    assert ring.node_for(b"user:42") == ring.node_for("user:42")


def test_key_on_a_point_belongs_to_that_point(ring: Ketama) -> None:
    # The first point of "10.0.1.3" is the MD5 of "10.0.1.3-0", which is also
    # the hash of the key "10.0.1.3-0": libmemcached takes the first point
    # >= the hash, so the key belongs to 10.0.1.3 itself.
    for node in SERVERS:
        key = server_label(node) + "-0"
        assert ring.point_for(key) == key_hash(key)
        assert ring.node_for(key) == node


def test_uhashring_agrees_on_points_but_not_on_lookup() -> None:
    """uhashring's ketama builds the same continuum but looks up with ``>``, not ``>=``."""
    import uhashring  # in the test extra

    theirs = uhashring.HashRing({server_label(n): w for n, w in SERVERS.items()}, hash_fn="ketama")
    ours = Ketama(SERVERS)
    assert sorted(theirs.runtime._keys) == [p for p, _ in ours.points()]
    disagree = [
        n for n in SERVERS if theirs.get_node(server_label(n) + "-0") != server_label(n)
    ]
    assert disagree  # keys sitting exactly on a point go to the next server there


def test_walk_yields_each_node_once(ring: Ketama) -> None:
    order = list(ring.walk("some-key"))
    assert order[0] == ring.node_for("some-key")
    assert sorted(order) == sorted(SERVERS)


def test_adding_a_node_moves_about_a_quarter_of_keys() -> None:
    three = Ketama([f"127.0.0.1:{p}" for p in (20001, 20002, 20003)])
    four = Ketama([f"127.0.0.1:{p}" for p in (20001, 20002, 20003, 20004)])
    keys = [f"key:{i}" for i in range(10_000)]
    moved = [k for k in keys if three.node_for(k) != four.node_for(k)]
    assert 0.15 <= len(moved) / len(keys) <= 0.35
    # Consistent hashing: every key that moved, moved to the new node.
    assert {four.node_for(k) for k in moved} == {"127.0.0.1:20004"}


def test_rejects_empty_ring_and_bad_weights() -> None:
    with pytest.raises(ValueError):
        Ketama([])
    with pytest.raises(ValueError):
        Ketama({"127.0.0.1:1": 0})
