"""CTR prediction platform on TFX. Install with the pinned set:

    pip install -c requirements/constraints.txt -e '.[test]'
"""
from setuptools import find_packages, setup

setup(
    name='tfx-ctr',
    version='0.1.0',
    description='Click-through-rate prediction on TensorFlow Extended: pipeline, models, '
                'serving and decision layer.',
    python_requires='>=3.10,<3.11',
    packages=find_packages(include=['datagen*', 'transform*', 'trainer*', 'pipeline*',
                                    'components*', 'serving*', 'policy*']),
    package_data={'': ['*.yaml']},
    install_requires=[
        'tfx==1.16.0',
        'tensorflow==2.16.2',
        'tf-keras>=2.16,<2.17',
        'tensorflow-transform==1.16.0',
        'tensorflow-model-analysis==0.47.1',
        'tensorflow-recommenders',
        'tensorflow-serving-api==2.16.1',
        'lightgbm',
        'apache-beam',
        'dill',
        'kfp-pipeline-spec>=0.2.2,<0.3',   # KubeflowV2DagRunner's compiler
        'pyarrow',
        'pyyaml',
        'scikit-learn',
        'matplotlib',                      # reliability diagrams in the run reports
    ],
    extras_require={'test': ['pytest', 'pytest-xdist', 'hypothesis', 'ruff']},
    entry_points={'console_scripts': ['ctr-datagen=datagen.__main__:main']},
)
