"""The scikit-feature (ASU) .mat datasets: gene expression, mass spectra, text, face and object images.

Files are ``X`` (samples x features) and ``Y`` (labels, 1..K or -1/1) with no train/test split; the
loader makes a stratified, seeded 2/3 - 1/3 split (see :func:`evosparse.data.splits.split_arrays`).
Checksums: sha256 of the files in ``shared/data/scikit_feature`` for those present there, else the Git
blob SHA-1 from ``jundongl/scikit-feature`` (commit 266c9a3, ``website/files/datasets/``).

Paper: Li et al., "Feature Selection: A Data Perspective", ACM Computing Surveys 50(6), 94 (2017).
"""

from __future__ import annotations

URL = "https://jundongl.github.io/scikit-feature/files/datasets/{file}"
# COIL20.mat is published here too; it is registered as an image data set ("coil20", pixels in [0, 1], the
# file the SET-RBM reference reads) in evosparse.data.registry, not as a standardised table.
COIL20 = ("COIL20.mat", "sha256:4595ebdda07f47b0eb014fcfaddc22b452f9aed9c1d9261a0d5bc336c1ee1344")
CITATION = "Li et al., 'Feature Selection: A Data Perspective', ACM Computing Surveys 50(6), 94 (2017)"

# (registry name, file name, checksum, description). Shapes are samples x features, then classes.
MAT_FILES: tuple[tuple[str, str, str, str], ...] = (
    # ---- biological: gene expression and mass spectrometry ------------------------------------------
    (
        "allaml",
        "ALLAML.mat",
        "sha256:068afe0fe1021932e1e7d801294c267de8aeaa9d41899acfac024e72b0d44c1e",
        "Leukemia ALL vs AML gene expression (Golub et al. 1999), 72 x 7129, 2 classes; the SET papers' 'Leukemia'",
    ),
    (
        "leukemia",
        "leukemia.mat",
        "sha256:eb92382fb77c968864cb0a92a2c77acde7f88ba7fe5fd5a64b98184e3a05269d",
        "Leukemia gene expression, discretised version, 72 x 7070, 2 classes (not ALLAML)",
    ),
    (
        "arcene",
        "arcene.mat",
        "sha256:779d678207b9a8c0ba8f2f5ecdb2216d9f98bf475ab040e806797efd36331bc5",
        "ARCENE mass spectrometry, cancer vs normal (NIPS 2003 challenge), 200 x 10000, 2 classes",
    ),
    (
        "colon",
        "colon.mat",
        "sha256:ffcdeba03eb67cec403fa1dc9f827c22a6e2c57786bf3e01dfe1b4b3e25e0a2f",
        "Colon tumour gene expression (Alon et al. 1999), 62 x 2000, 2 classes",
    ),
    (
        "glioma",
        "GLIOMA.mat",
        "sha256:c31cd32edd770c7a102729839e670e588bc959a591e0eae5a0676c9ca11d4c4f",
        "Glioma gene expression, 50 x 4434, 4 classes",
    ),
    (
        "lung_discrete",
        "lung_discrete.mat",
        "sha256:93c6a65eb1f6f9f95ac897010c337254a57c57e7f8c0c9a7963a0e03de8233f4",
        "Lung cancer, discretised, 73 x 325, 7 classes (not the 203 x 3312 'lung')",
    ),
    (
        "lymphoma",
        "lymphoma.mat",
        "sha256:bd834ed911d47ecf2e07625ed77617d514d89ee398fa2e7a787230f7cf5243f8",
        "Lymphoma gene expression, 96 x 4026, 9 classes",
    ),
    (
        "nci9",
        "nci9.mat",
        "sha256:e336aa43eaf3103803252604375a89141043994a54f93222f7ccc12b5b910789",
        "NCI-60 cancer cell lines gene expression, 60 x 9712, 9 classes",
    ),
    (
        "prostate_ge",
        "Prostate_GE.mat",
        "sha256:050b598534dbc662f23e30f39b41354b61d02ab8567837bcf9b1091c1c636ab4",
        "Prostate cancer gene expression, 102 x 5966, 2 classes",
    ),
    (
        "tox_171",
        "TOX_171.mat",
        "sha256:f52f57e61775b7830c84750456d7fadfd220d1cc8eed26419c3390eb9216cc84",
        "Toxicology gene expression, 171 x 5748, 4 classes",
    ),
    # ---- text (20 Newsgroups pairs, word counts) ---------------------------------------------------
    (
        "basehock",
        "BASEHOCK.mat",
        "sha256:e0452e0f3c0fefdc5cb6352165e4ba4a25c3a2a7b5a5b4d44e103742d6317aa0",
        "20 Newsgroups baseball vs hockey, 1993 x 4862, 2 classes",
    ),
    (
        "pcmac",
        "PCMAC.mat",
        "sha256:9999dfccf97ab88f87127dd3457da436acb75cda9f0af4750e7cae5fe1a31b25",
        "20 Newsgroups pc vs mac, 1943 x 3289, 2 classes",
    ),
    (
        "relathe",
        "RELATHE.mat",
        "sha256:1091fe26c721aa69ddc5ce3ebcef54e03565809cae07e1769cef45ad23ab28d0",
        "20 Newsgroups religion vs atheism, 1427 x 4322, 2 classes",
    ),
    # ---- images and speech, as flat feature vectors -------------------------------------------------
    (
        "isolet",
        "Isolet.mat",
        "sha256:ea73c69b1342a7def8199458e53a70307a83d557eceb2579863dda57c3ccd2b1",
        "ISOLET spoken letters, 1560 x 617, 26 classes",
    ),
    (
        "orl",
        "ORL.mat",
        "sha256:e257ec36002e48688ed7f3b9fda13f479f2fd98864fa0672d1353eda1912b189",
        "ORL face images 32x32, 400 x 1024, 40 classes",
    ),
    (
        "orlraws10p",
        "orlraws10P.mat",
        "sha256:6ffa58759c5636f4ce311d23e44ef8de9f39bbb844902154c0cc5daac71226d6",
        "ORL raw face images 112x92, 100 x 10304, 10 classes",
    ),
    (
        "pixraw10p",
        "pixraw10P.mat",
        "sha256:aa4b474244ae847dc2efdc868c0ff58fc3748a830c2ffdf760a1697cf72088f8",
        "PIX raw face images 100x100, 100 x 10000, 10 classes",
    ),
    (
        "warpar10p",
        "warpAR10P.mat",
        "sha256:92b5f7e72b5715ada8f2df16e6d8e5effd8e0034a53a656ed9ef76e3f727d413",
        "AR face images 60x40, 130 x 2400, 10 classes",
    ),
    (
        "warppie10p",
        "warpPIE10P.mat",
        "sha256:0d22b0e4fe224ea7347ae266370b6eb0d724d5fd0ad7da71261a58c24e08c3c2",
        "PIE face images 44x55, 210 x 2420, 10 classes",
    ),
    (
        "yale",
        "Yale.mat",
        "sha256:cccd29abd2c520dd5cc8ff7645b422c2bdadd59406a6b6a0239143d9d44afcf3",
        "Yale face images 32x32, 165 x 1024, 15 classes",
    ),
    # ---- 4 MiB or more: not in shared/data, download only ------------------------------------------
    (
        "cll_sub_111",
        "CLL_SUB_111.mat",
        "git-sha1:6f14fa8d02fbe7fca3e73f4c97da3f1e7003a648",
        "Chronic lymphocytic leukemia gene expression, 111 x 11340, 3 classes",
    ),
    (
        "gli_85",
        "GLI_85.mat",
        "git-sha1:5e6f7b529254a8460ff8ad96a5675cd95304e10a",
        "Glioma gene expression, 85 x 22283, 2 classes",
    ),
    (
        "smk_can_187",
        "SMK_CAN_187.mat",
        "git-sha1:af38a120b93d5701e48e1ae679b5305c2ad2c791",
        "Smokers' lung cancer gene expression, 187 x 19993, 2 classes",
    ),
    (
        "lung",
        "lung.mat",
        "git-sha1:becb82c675f788b040d5ced741955e19b94ce9b8",
        "Lung cancer gene expression, 203 x 3312, 5 classes (the SET examples' 'lung')",
    ),
    (
        "gla_bra_180",
        "GLA_BRA_180.mat",
        "git-sha1:55b4f84047928894ce1f7340dac122dab03ab99d",
        "Brain glioma gene expression, 180 x 49151, 4 classes (per the scikit-feature table)",
    ),
    (
        "carcinom",
        "Carcinom.mat",
        "git-sha1:ed23efd165241be723f0796d8660c67ca8448bcc",
        "Carcinomas gene expression, 174 x 9182, 11 classes (per the scikit-feature table)",
    ),
    (
        "usps",
        "USPS.mat",
        "git-sha1:ba84f0e79d4cb653e8e6b6b1d31e3ed0c5a7bff0",
        "USPS handwritten digits 16x16, 9298 x 256, 10 classes (per the scikit-feature table)",
    ),
    (
        "gisette",
        "gisette.mat",
        "git-sha1:09251d363e834a5cec17634245f09ae33f8c2f3b",
        "GISETTE digits 4 vs 9 (NIPS 2003 challenge), 7000 x 5000, 2 classes (per the scikit-feature table)",
    ),
)
