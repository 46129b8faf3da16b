{
  'targets': [
    {
      'target_name': 'tun',
      'sources': ['native/tun.c'],
      'defines': ['NAPI_VERSION=8'],
      'configurations': {
        'Release': {
          'cflags!': ['-O3'],
          'cflags': ['-O2'],
        },
      },
    },
    {
      'target_name': 'datapath',
      'sources': ['native/datapath.c'],
      'defines': ['NAPI_VERSION=8'],
      'libraries': ['-lcrypto'],
      'configurations': {
        'Release': {
          'cflags!': ['-O3'],
          'cflags': ['-O2'],
        },
      },
    },
    {
      'target_name': 'crypt',
      'sources': ['native/crypt.c'],
      'defines': ['NAPI_VERSION=8'],
      'libraries': ['-lcrypt'],
      'configurations': {
        'Release': {
          'cflags!': ['-O3'],
          'cflags': ['-O2'],
        },
      },
    },
  ],
}
